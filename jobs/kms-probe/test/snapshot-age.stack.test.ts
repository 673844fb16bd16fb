// The probe's snapshot-age check against snapshots the raft-snapshot job really stored (same key
// layout, one shared definition in @vaultkeeper/records): only this cluster's snapshots count
// (another cluster of the same name in the same folder does not make a stale backup look fresh),
// the lock object is not an "unverified snapshot", format-2 objects from before cluster ids still
// count, and a stale one is a warning that does not fail the run.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi } from '../../../test/stack/http.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { runJobProcess, type JobRun } from '../../../test/support/run-job.ts';
import { TestBucket, applyJobPolicy } from '../../raft-snapshot/test/stack-fixture.ts';

const stack = readStack();
type Check = { status: string; class?: string; summary: string; severity: string };
const checkOf = (r: JobRun) => (r.summary as { checks: Record<string, Check> }).checks["snapshot-age"]!;
const probe = (t: TestBucket, env: Record<string, string> = {}) =>
  runJobProcess({
    job: 'kms-probe',
    env: { KMS_PROBE_SNAPSHOT_BUCKET: t.bucket, KMS_PROBE_SNAPSHOT_PREFIX: t.prefix, KMS_PROBE_S3_PATH_STYLE: 'true', KMS_PROBE_TABLE: 'true', ...env },
    timeoutMs: 90_000,
  });
/** A snapshot run of the stack named by its own cluster_name, as in a cluster where nobody set snapshot.cluster. */
const snapshot = (t: TestBucket) => t.run([], { SNAPSHOT_CLUSTER: undefined });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  let storedAt = 0;
  afterAll(async () => {
    await t.clean();
  });

  it('judges the newest verified snapshot of this cluster; the lock is not a snapshot', async () => {
    expect(checkOf(await probe(t))).toMatchObject({ status: 'fail', class: 'stale' });
    const run = await snapshot(t);
    expect(run.code, run.all).toBe(0);
    storedAt = Date.now();
    // A run in progress: its lock (newer than the snapshot: S3 times have one-second resolution) is just a lock.
    await sleep(1_100);
    const lock = `${t.prefix}${name}/${id}/.lock`;
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: lock, Body: '{}' }));
    const fresh = await probe(t);
    expect(fresh.code, fresh.all).toBe(0);
    expect(checkOf(fresh), fresh.all).toMatchObject({ status: 'ok', summary: expect.stringMatching(/^newest verified snapshot \d+s old$/) });

    await sleep(2_100);
    const stale = await probe(t, { KMS_PROBE_SNAPSHOT_MAX_AGE: '1s' });
    expect(stale.code, 'a failed warning-level check does not fail the run').toBe(0);
    expect(checkOf(stale)).toMatchObject({ status: 'fail', class: 'stale', severity: 'warning' });
    expect(stale.stdout).toMatch(/^RESULT: OK with 1 warning\(s\)$/m);
  });

  it('another cluster of the same name in the same folder does not count, and is named', async () => {
    // The other cluster's fresh snapshot, committed (record beside it), in its own cluster-id folder.
    const otherId = '0a0a0a0a-1111-2222-3333-444444444444';
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
    const other = `${t.prefix}${name}/${otherId}/${name}-${stamp}-othercluster.snap`;
    await sleep(Math.max(0, storedAt + 12_000 - Date.now()));
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: other, Body: 'x' }));
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: `${other}.json`, Body: '{}' }));
    // Ours (from the test above) is older than the limit, the other cluster's is far younger:
    // stale, whatever the other cluster did.
    const r = await probe(t, { KMS_PROBE_SNAPSHOT_MAX_AGE: '8s' });
    expect(checkOf(r), r.all).toMatchObject({ status: 'fail', class: 'stale' });
    expect(r.all).toContain(otherId);
  });
});

describe('snapshot-age after an upgrade', () => {
  const t = new TestBucket('probe-legacy');
  afterAll(async () => {
    await t.clean();
  });

  it('format-2 snapshots (stored before cluster ids) count while no other cluster shares the name', async () => {
    // putSnapshotLike writes format 2 under TestBucket's cluster name; tell the probe that name.
    await t.putSnapshotLike(new Date(), 'legacy');
    const r = await probe(t, { KMS_PROBE_SNAPSHOT_CLUSTER: t.cluster });
    expect(checkOf(r), r.all).toMatchObject({ status: 'ok' });
  });
});
