import { describe, expect, it } from 'vitest';
import { clusterScope, listFolder, mayAbortLegacyUpload, resolveCluster, type ListedObject } from '../src/index.ts';

const id = '9b68ba8f-55a0-0614-360e-67a59448abb4';
const other = '0a0a0a0a-1111-2222-3333-444444444444';
const at = (s: string) => new Date(`2025-11-2${s}Z`);
const legacy = (stamp: string, modified: string): ListedObject[] => [
  { key: `p/vault/vault-${stamp}-old.snap`, lastModified: at(modified) },
  { key: `p/vault/vault-${stamp}-old.snap.json`, lastModified: at(modified) },
];
const own = (stamp: string, modified: string, record = true): ListedObject[] => [
  { key: `p/vault/${id}/vault-${stamp}-new.snap`, lastModified: at(modified) },
  ...(record ? [{ key: `p/vault/${id}/vault-${stamp}-new.snap.json`, lastModified: at(modified) }] : []),
];
const scope = (top: ListedObject[], mine: ListedObject[], folders: string[] = [], legacyLock: 'none' | 'expired' | 'live' = 'none') =>
  clusterScope({ prefix: 'p/', cluster: 'vault', clusterId: id, top: { objects: top, folders }, own: mine, legacyLock });

describe('clusterScope: whose format-2 objects', () => {
  it('adopts and may remove our own history: all format-2 objects older than our first format-3 snapshot', () => {
    const s = scope(legacy('20251120T000000Z', '0T00:00:01'), own('20251121T000000Z', '1T00:00:01'), [`p/vault/${id}/`]);
    expect(s).toMatchObject({ adopt: true, mayRemove: true, reason: undefined, since: at('1T00:00:01') });
    expect(mayAbortLegacyUpload(s, at('0T12:00:00'))).toBe(true);
    expect(mayAbortLegacyUpload(s, at('2T00:00:00'))).toBe(false);
  });

  it('a format-2 object written after our first format-3 snapshot proves another writer: nothing adopted', () => {
    const s = scope([...legacy('20251120T000000Z', '0T00:00:01'), ...legacy('20251122T000000Z', '2T00:00:01')], own('20251121T000000Z', '1T00:00:01'));
    expect(s.adopt).toBe(false);
    expect(s.mayRemove).toBe(false);
    expect(s.reason).toMatch(/another cluster of this name still runs a version before cluster ids/);
  });

  it('a legacy lock newer than our first format-3 snapshot is such proof too', () => {
    const s = scope([{ key: 'p/vault/.lock', lastModified: at('2T00:00:00') }, ...legacy('20251120T000000Z', '0T00:00:01')], own('20251121T000000Z', '1T00:00:01'), [], 'live');
    expect(s.adopt).toBe(false);
  });

  it('first run after the upgrade (no committed format-3 yet): counted, never removed', () => {
    const s = scope(legacy('20251120T000000Z', '0T00:00:01'), own('20251121T000000Z', '1T00:00:01', false));
    expect(s).toMatchObject({ adopt: true, mayRemove: false, since: undefined });
    expect(mayAbortLegacyUpload(s, at('0T00:00:00'))).toBe(false);
  });

  it('a live legacy lock (format-2 run in progress): not removed', () => {
    const s = scope([{ key: 'p/vault/.lock', lastModified: at('0T00:00:00') }, ...legacy('20251120T000000Z', '0T00:00:01')], own('20251121T000000Z', '1T00:00:01'), [], 'live');
    expect(s).toMatchObject({ adopt: true, mayRemove: false });
    expect(scope([{ key: 'p/vault/.lock', lastModified: at('0T00:00:00') }, ...legacy('20251120T000000Z', '0T00:00:01')], own('20251121T000000Z', '1T00:00:01'), [], 'expired').mayRemove).toBe(true);
  });

  it('another cluster id under the name: format-2 objects are nobody’s for sure', () => {
    const s = scope(legacy('20251120T000000Z', '0T00:00:01'), own('20251121T000000Z', '1T00:00:01'), [`p/vault/${id}/`, `p/vault/${other}/`]);
    expect(s).toMatchObject({ adopt: false, mayRemove: false, otherClusterIds: [other] });
  });
});

describe('resolveCluster', () => {
  it('uses what Vault reports, the configured name first, the configured id when Vault does not answer', () => {
    expect(resolveCluster({ name: 'Vault', id: id.toUpperCase() }, {})).toEqual({ cluster: 'vault', clusterId: id });
    expect(resolveCluster({ name: 'vault', id }, { cluster: 'prod' })).toEqual({ cluster: 'prod', clusterId: id });
    expect(resolveCluster(undefined, { cluster: 'prod', clusterId: id })).toEqual({ cluster: 'prod', clusterId: id });
    expect(resolveCluster({ name: 'vault', id }, { clusterId: other })).toMatchObject({ error: expect.stringContaining('snapshot.clusterId') });
    expect(resolveCluster({ id }, {})).toMatchObject({ error: expect.stringContaining('snapshot.cluster') });
  });
});

describe('clusterScope: the format-3 marker outlives pruning', () => {
  it('a format-2 object newer than the marker is proof even when our first format-3 snapshot was pruned', () => {
    const marker = { key: `p/vault/${id}/.format-3-since`, lastModified: at('1T00:00:01') };
    const s = scope([...legacy('20251122T000000Z', '2T00:00:01')], [marker, ...own('20251123T000000Z', '3T00:00:01')]);
    expect(s).toMatchObject({ adopt: false, marked: true, since: at('1T00:00:01') });
  });
});

describe('listFolder', () => {
  it('reads every page, or stops after maxPages', async () => {
    const pages = [
      { Contents: [{ Key: 'a', Size: 1 }], CommonPrefixes: [{ Prefix: 'f/' }], IsTruncated: true, NextContinuationToken: 't1' },
      { Contents: [{ Key: 'b' }], IsTruncated: true, NextContinuationToken: 't2' },
      { Contents: [{ Key: 'c' }], IsTruncated: false },
    ];
    const tokens: Array<string | undefined> = [];
    const page = async (_prefix: string, token: string | undefined) => {
      tokens.push(token);
      return pages[tokens.length - 1]!;
    };
    expect((await listFolder(page, 'p/')).objects.map((o) => o.key)).toEqual(['a', 'b', 'c']);
    expect(tokens).toEqual([undefined, 't1', 't2']);
    tokens.length = 0;
    expect(await listFolder(page, 'p/', 2)).toMatchObject({ objects: [{ key: 'a', size: 1 }, { key: 'b', size: 0 }], folders: ['f/'] });
  });
});
