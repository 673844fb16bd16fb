import { describe, expect, it } from 'vitest';
import {
  clusterIdsIn,
  isClusterId,
  isUsableClusterName,
  lockKey,
  newRunId,
  normalizePrefix,
  parseSnapshotKey,
  readMetadata,
  recordKey,
  sanitizeCluster,
  sanitizeClusterId,
  snapshotKey,
  snapshotRecord,
} from '../src/index.ts';

const id = '9b68ba8f-55a0-0614-360e-67a59448abb4';
const ref = { prefix: 'backups/vault', cluster: 'prod-eu', clusterId: id };

describe('snapshot object names', () => {
  it('sort by time within a cluster and parse back, with the cluster id', () => {
    const a = snapshotKey(ref, new Date('2025-11-27T02:00:05.123Z'), 'abc123');
    const b = snapshotKey(ref, new Date('2025-11-28T01:00:00Z'), '0zz');
    expect(a).toBe(`backups/vault/prod-eu/${id}/prod-eu-20251127T020005Z-abc123.snap`);
    expect([b, a].sort()).toEqual([a, b]);
    expect(parseSnapshotKey(a, 'backups/vault/', 'prod-eu')).toEqual({ cluster: 'prod-eu', clusterId: id, takenAt: new Date('2025-11-27T02:00:05Z'), runId: 'abc123' });
  });

  it('read format-2 keys (no cluster id) as before', () => {
    expect(parseSnapshotKey('backups/vault/prod-eu/prod-eu-20251127T020005Z-abc123.snap', 'backups/vault/', 'prod-eu')).toEqual({
      cluster: 'prod-eu',
      clusterId: undefined,
      takenAt: new Date('2025-11-27T02:00:05Z'),
      runId: 'abc123',
    });
  });

  it('refuse keys that are not snapshots of this job', () => {
    const p = 'vault/';
    for (const key of [
      'vault/prod/prod-20251127T020005Z-abc.snap.tmp',
      'vault/prod/other-20251127T020005Z-abc.snap',
      'vault/prod/prod-20251327T020005Z-abc.snap',
      'vault/prod/.incoming/abc.snap',
      'vault/prod/prod-20251127T020005Z-abc.snap.json',
      'vault/prod/.lock',
      `vault/prod/${id}/.lock`,
      `vault/prod/${id}/prod-20251127T020005Z-abc.snap.json`,
      `vault/prod/not-an-id/prod-20251127T020005Z-abc.snap`,
      `vault/prod/${id}/x/prod-20251127T020005Z-abc.snap`,
      'vault/prodx/prod-20251127T020005Z-abc.snap',
      'vault/prod/prod-20251127T020005Z-ABC.snap',
    ]) {
      expect(parseSnapshotKey(key, p, 'prod'), key).toBeUndefined();
    }
  });

  it('keep helper objects apart from snapshots, one lock per cluster id', () => {
    expect(recordKey('c/c-20251127T020005Z-abc.snap')).toBe('c/c-20251127T020005Z-abc.snap.json');
    expect(lockKey({ prefix: '/a//', cluster: 'c', clusterId: id })).toBe(`a/c/${id}/.lock`);
    expect(normalizePrefix('')).toBe('');
    expect(clusterIdsIn([`a/c/${id}/`, 'a/c/other/', 'a/d/x/'], 'a/', 'c')).toEqual([id]);
  });

  it('sanitize cluster names and ids', () => {
    expect(sanitizeCluster('Vault Cluster/EU 1')).toBe('vault-cluster-eu-1');
    expect(sanitizeCluster('HoProd')).toBe('hoprod');
    expect(sanitizeCluster('x'.repeat(80))).toHaveLength(63);
    expect(() => sanitizeCluster('///')).toThrow();
    expect(isUsableClusterName('///')).toBe(false);
    expect(isUsableClusterName('HoProd')).toBe(true);
    expect(isClusterId(id.toUpperCase())).toBe(true);
    expect(isClusterId('../x')).toBe(false);
    expect(sanitizeClusterId(id.toUpperCase())).toBe(id);
    expect(() => sanitizeClusterId('../x')).toThrow();
    expect(newRunId()).toMatch(/^[a-z0-9]{10}$/);
  });
});

describe('snapshot metadata and record', () => {
  const meta = { 'vaultkeeper-job': 'raft-snapshot', cluster: 'c', 'raft-index': '1', 'raft-term': '1', 'taken-at': 't', 'run-id': 'r', 'vault-version': 'v', 'vault-node': 'n' };
  it('format 3 must name the cluster id of its folder; format 2 has none', () => {
    expect(readMetadata({ ...meta, 'vaultkeeper-format': '3', 'cluster-id': id }, 'c', id)).toBeDefined();
    expect(readMetadata({ ...meta, 'vaultkeeper-format': '3', 'cluster-id': id }, 'c', 'other')).toBeUndefined();
    expect(readMetadata({ ...meta, 'vaultkeeper-format': '2' }, 'c', undefined)).toBeDefined();
    expect(readMetadata({ ...meta, 'vaultkeeper-format': '2' }, 'c', id)).toBeUndefined();
    expect(readMetadata({ ...meta, 'vaultkeeper-format': '3', 'cluster-id': id }, 'other', id)).toBeUndefined();
  });
  it('records of both formats parse; format 3 without clusterId does not', () => {
    const base = { job: 'raft-snapshot', key: 'k', cluster: 'c', takenAt: 't', runId: 'r', sha256: 'a'.repeat(64), size: 1, raftIndex: '1', raftTerm: '1', vaultVersion: 'v', vaultNode: 'n', verified: [], members: [] };
    expect(snapshotRecord.safeParse({ ...base, format: 2 }).success).toBe(true);
    expect(snapshotRecord.safeParse({ ...base, format: 3, clusterId: id }).success).toBe(true);
    expect(snapshotRecord.safeParse({ ...base, format: 3 }).success).toBe(false);
  });
});
