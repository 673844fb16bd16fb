// The probe's snapshot-age check against snapshots the raft-snapshot job really stored (same key
// layout, one shared definition in @vaultkeeper/records): only this cluster's snapshots count
// (another cluster of the same name in the same folder does not make a stale backup look fresh:
// the judged key is ours), the lock object is not an "unverified snapshot", a newer snapshot
// without its record is ignored and said, format-2 objects from before cluster ids still count,
// a stale one is a warning that does not fail the run, the age is pushed as a metric, and the age
// is still judged when Vault does not answer (snapshot.clusterId). No sleeps: staleness is judged
// at a given "now" (checkSnapshotAge's own parameter), or on an empty folder.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi } from '../../../test/stack/http.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { runJobProcess, type JobRun } from '../../../test/support/run-job.ts';
import { TestBucket, applyJobPolicy } from '../../raft-snapshot/test/stack-fixture.ts';
import { checkSnapshotAge } from '../src/checks/snapshot-age.ts';

const stack = readStack();
const day = 86_400_000;
type Check = { check: string; status: string; class?: string; msg: string; severity: string; notes?: string[]; details?: { key?: string; ageSeconds?: number } };
/** The check's own log line: status, notes and details (which key was judged). */
const checkOf = (r: JobRun): Check => {
  const line = r.lines.find((l) => l.check === 'snapshot-age') as Check | undefined;
  if (!line) throw new Error(`no snapshot-age line:\n${r.all}`);
  return line;
};
const probe = (t: TestBucket, env: Record<string, string> = {}) =>
  runJobProcess({
    job: 'kms-probe',
    env: { KMS_PROBE_SNAPSHOT_BUCKET: t.bucket, KMS_PROBE_SNAPSHOT_PREFIX: t.prefix, KMS_PROBE_S3_PATH_STYLE: 'true', KMS_PROBE_TABLE: 'true', ...env },
    timeoutMs: 90_000,
  });
/** A snapshot run of the stack named by its own cluster_name, as in a cluster where nobody set snapshot.cluster. */
const snapshot = (t: TestBucket) => t.run([], { SNAPSHOT_CLUSTER: undefined });

async function pushedSeries(metric: string): Promise<string[]> {
  const text = await (await fetch(`${stack.pushgateway.url}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(`${metric}{`) && l.includes('job="vaultkeeper_kms_probe"'));
}

let name = '';
let id = '';
beforeAll(async () => {
  await applyJobPolicy();
  const health = await baoApi(stack.openbao.addr, 'GET', 'sys/health');
  name = String(health.body.cluster_name);
  id = String(health.body.cluster_id);
});

describe('snapshot-age', () => {
  const t = new TestBucket('probe-age');
  let ours = '';
  afterAll(async () => {
    await t.clean();
  });

  it('no snapshot: stale, a warning that does not fail the run', async () => {
    const empty = await probe(t);
    expect(checkOf(empty)).toMatchObject({ status: 'fail', class: 'stale', severity: 'warning' });
    expect(empty.code, 'a failed warning-level check does not fail the run').toBe(0);
    expect(empty.stdout).toMatch(/^RESULT: OK with 1 warning\(s\)$/m);
  });

  it('judges the newest verified snapshot of this cluster; the lock is not a snapshot; a newer one without record is ignored and said', async () => {
    const run = await snapshot(t);
    expect(run.code, run.all).toBe(0);
    ours = String(run.summary!.key);
    // A run in progress: its lock is just a lock. A newer snapshot never committed (no record).
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: `${t.prefix}${name}/${id}/.lock`, Body: '{}' }));
    const stamp = new Date(Date.now() + 60_000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: `${t.prefix}${name}/${id}/${name}-${stamp}-uncommitted.snap`, Body: 'x' }));
    const fresh = await probe(t);
    expect(fresh.code, fresh.all).toBe(0);
    const c = checkOf(fresh);
    expect(c, fresh.all).toMatchObject({ status: 'warn', msg: expect.stringMatching(/^newest verified snapshot \d+s old$/), details: { key: ours, objects: 2 } });
    expect(c.notes).toContain('1 newer snapshot(s) without a .json record ignored');
    // The age is pushed (the probe pushes once it finished).
    const series = await pushedSeries('vaultkeeper_kms_probe_snapshot_age_seconds');
    expect(series, fresh.all).toHaveLength(1);
    expect(Number(series[0]!.split(' ').at(-1))).toBeGreaterThanOrEqual(0);
  });

  it('stale past the limit (judged at a later "now"): the same snapshot, failed as stale', async () => {
    const outcome = await checkSnapshotAge(
      { s3: t.s3, bucket: t.bucket, prefix: t.prefix, cluster: name, clusterId: id, maxAgeSeconds: 86_400, callTimeoutSeconds: 10 },
      AbortSignal.timeout(30_000),
      Date.now() + 2 * day,
    );
    expect(outcome).toMatchObject({ status: 'fail', class: 'stale', details: { key: ours } });
  });

  it('another cluster of the same name in the same folder does not count, and is named', async () => {
    // The other cluster's snapshot, committed (record beside it), in its own cluster-id folder,
    // newer than ours by its name and by S3's time.
    const otherId = '0a0a0a0a-1111-2222-3333-444444444444';
    const stamp = new Date(Date.now() + 120_000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
    const other = `${t.prefix}${name}/${otherId}/${name}-${stamp}-othercluster.snap`;
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: other, Body: 'x' }));
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: `${other}.json`, Body: '{}' }));
    const r = await probe(t);
    const c = checkOf(r);
    expect(c.details?.key, r.all).toBe(ours);
    expect((c.notes ?? []).join('\n')).toContain(otherId);
    // And judged at a later "now", ours is stale whatever the other cluster did.
    const later = await checkSnapshotAge(
      { s3: t.s3, bucket: t.bucket, prefix: t.prefix, cluster: name, clusterId: id, maxAgeSeconds: 86_400, callTimeoutSeconds: 10 },
      AbortSignal.timeout(30_000),
      Date.now() + 2 * day,
    );
    expect(later).toMatchObject({ status: 'fail', class: 'stale', details: { key: ours } });
  });

  it('Vault unreachable: with snapshot.clusterId the backup age is still judged; without, the check says why not', async () => {
    const dead = { VAULT_ADDR: 'http://127.0.0.1:9', VAULT_FALLBACK_ADDRS: '' };
    const withId = await probe(t, { ...dead, KMS_PROBE_SNAPSHOT_CLUSTER: name, KMS_PROBE_SNAPSHOT_CLUSTER_ID: id });
    const c = checkOf(withId);
    expect(c.status, withId.all).not.toBe('fail');
    expect(c.details?.key).toBe(ours);
    expect((c.notes ?? []).join('\n')).toContain('from snapshot.clusterId');
    const without = await probe(t, dead);
    expect(checkOf(without), without.all).toMatchObject({ status: 'fail', class: 'unreachable' });
  });
});

describe('snapshot-age after an upgrade', () => {
  const t = new TestBucket('probe-legacy');
  afterAll(async () => {
    await t.clean();
  });

  it('format-2 snapshots (stored before cluster ids) count while no other cluster shares the name', async () => {
    // Format 2 under TestBucket's cluster name; tell the probe that name.
    const legacy = await t.putSnapshotLike(new Date(), 'legacy', { legacy: true });
    const r = await probe(t, { KMS_PROBE_SNAPSHOT_CLUSTER: t.cluster });
    expect(checkOf(r), r.all).toMatchObject({ status: 'ok', details: { key: legacy } });
  });
});
