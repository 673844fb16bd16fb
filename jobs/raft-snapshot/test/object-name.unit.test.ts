import { describe, expect, it } from 'vitest';
import { lockKey, recordKey, newRunId, normalizePrefix, parseSnapshotKey, sanitizeCluster, snapshotKey } from '../src/object-name.ts';

describe('object names', () => {
  it('sort by time within a cluster and parse back', () => {
    const a = snapshotKey('backups/vault', 'prod-eu', new Date('2025-11-27T02:00:05.123Z'), 'abc123');
    const b = snapshotKey('backups/vault', 'prod-eu', new Date('2025-11-28T01:00:00Z'), '0zz');
    expect(a).toBe('backups/vault/prod-eu/prod-eu-20251127T020005Z-abc123.snap');
    expect([b, a].sort()).toEqual([a, b]);
    expect(parseSnapshotKey(a, 'backups/vault/', 'prod-eu')).toEqual({
      cluster: 'prod-eu',
      takenAt: new Date('2025-11-27T02:00:05Z'),
      runId: 'abc123',
    });
  });

  it('refuse keys that are not ours', () => {
    const p = 'vault/';
    for (const key of [
      'vault/prod/prod-20251127T020005Z-abc.snap.tmp',
      'vault/prod/other-20251127T020005Z-abc.snap',
      'vault/prod/prod-20251327T020005Z-abc.snap',
      'vault/prod/.incoming/abc.snap',
      'vault/prod/prod-20251127T020005Z-abc.snap.json',
      'vault/prod/.lock',
      'vault/prodx/prod-20251127T020005Z-abc.snap',
      'vault/prod/prod-20251127T020005Z-ABC.snap',
    ]) {
      expect(parseSnapshotKey(key, p, 'prod'), key).toBeUndefined();
    }
  });

  it('keep helper objects apart from snapshots', () => {
    expect(recordKey('c/c-20251127T020005Z-abc.snap')).toBe('c/c-20251127T020005Z-abc.snap.json');
    expect(lockKey('/a//', 'c')).toBe('a/c/.lock');
    expect(normalizePrefix('')).toBe('');
  });

  it('sanitize cluster names', () => {
    expect(sanitizeCluster('Vault Cluster/EU 1')).toBe('vault-cluster-eu-1');
    expect(() => sanitizeCluster('///')).toThrow();
    expect(newRunId()).toMatch(/^[a-z0-9]{10}$/);
  });
});
