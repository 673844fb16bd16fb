// Two clusters of the same name share a bucket; this one (the stack) runs the current version
// (format 3), the other still runs the version before cluster ids (format 2: directly in the name's
// folder, its lock at <prefix><name>/.lock). Nothing of the other's may be pruned, aborted or
// deleted, and the probe must not count its fresh snapshots as ours. The format-2 writer writes its
// objects exactly as 815e21e did (TestBucket.putSnapshotLike legacy, its lock body and a multipart
// upload of a run in progress), against the real S3 (moto).
import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJobProcess } from '../../../test/support/run-job.ts';
import { TestBucket, applyJobPolicy } from './stack-fixture.ts';

const day = 86_400_000;
const keepOne = { SNAPSHOT_KEEP_LAST: '1', SNAPSHOT_KEEP_DAILY: '0', SNAPSHOT_KEEP_WEEKLY: '0', SNAPSHOT_KEEP_MONTHLY: '0' };

beforeAll(async () => {
  await applyJobPolicy();
});

describe('a format-2 writer (another cluster of the same name, not yet upgraded) in the same folder', () => {
  const t = new TestBucket('legacy-writer');
  afterAll(async () => {
    await t.clean();
  });

  it('keeps its snapshots, its in-flight upload and its uncommitted object; the probe does not count it', async () => {
    // Our own history from before the upgrade: format 2, written before our first format-3 run.
    const ourOld = await t.putSnapshotLike(new Date(Date.now() - 5 * day), 'ourold', { legacy: true });
    const first = await t.run([], keepOne);
    expect(first.code, first.all).toBe(0);
    // The first run after the upgrade proves nothing yet: format-2 objects are counted, never removed.
    expect(await t.keys()).toContain(ourOld);

    // Then the other cluster (old version) goes on writing format 2: two committed generations...
    const theirs = [
      await t.putSnapshotLike(new Date(Date.now() - 2 * day), 'theirold', { legacy: true }),
      await t.putSnapshotLike(new Date(Date.now() - 60_000), 'theirnew', { legacy: true }),
    ];
    // ...and a run in progress: its lock (815e21e's lock body), a multipart upload, and a completed
    // upload whose record it is about to write.
    const lock = `${t.clusterPrefix}.lock`;
    const now = new Date();
    await t.s3.send(new PutObjectCommand({
      Bucket: t.bucket, Key: lock, ContentType: 'application/json',
      Body: JSON.stringify({ runId: 'theirrun', host: hostname(), pid: 1, startedAt: now.toISOString(), expiresAt: new Date(now.getTime() + 3_600_000).toISOString() }),
    }));
    const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
    const inFlight = `${t.clusterPrefix}${t.cluster}-${stamp}-theirrun.snap`;
    const upload = await t.s3.send(new CreateMultipartUploadCommand({ Bucket: t.bucket, Key: inFlight, Metadata: { 'vaultkeeper-job': 'raft-snapshot', 'vaultkeeper-format': '2', cluster: t.cluster } }));
    const uncommitted = await t.putSnapshotLike(new Date(Date.now() - 30_000), 'theirdone', { legacy: true, record: false });

    const second = await t.run([], keepOne);
    expect(second.code, second.all).toBe(0);
    const keys = await t.keys();
    for (const k of theirs) {
      expect(keys, second.all).toContain(k);
      expect(keys).toContain(`${k}.json`);
    }
    expect(keys).toContain(uncommitted);
    expect(keys).toContain(lock);
    expect((await t.uploads()).map((u) => u.UploadId)).toContain(upload.UploadId);
    // Said loudly: a warning naming the proof, and the summary.
    expect(second.lines.some((l) => l.level === 'warn' && /another cluster of this name still runs a version before cluster ids/.test(String(l.msg))), second.all).toBe(true);
    expect(second.summary).toMatchObject({ legacyObjectsLeftAlone: expect.any(Number) });
    // Our own format-3 snapshots are pruned as usual: only the newest is kept.
    expect(keys).not.toContain(String(first.summary!.key));
    expect(keys).toContain(String(second.summary!.key));

    // The probe judges our snapshots only: the other cluster's format-2 snapshot, newer than our
    // newest (as when our runs fail and theirs go on), must not make our backup look fresh.
    const theirNewest = await t.putSnapshotLike(new Date(Date.now() + 60_000), 'theirnewest', { legacy: true });
    const probe = await runJobProcess({
      job: 'kms-probe',
      env: { KMS_PROBE_SNAPSHOT_BUCKET: t.bucket, KMS_PROBE_SNAPSHOT_PREFIX: t.prefix, KMS_PROBE_SNAPSHOT_CLUSTER: t.cluster, KMS_PROBE_S3_PATH_STYLE: 'true' },
      timeoutMs: 90_000,
    });
    const check = probe.lines.find((l) => l.check === 'snapshot-age') as { status: string; details?: { key?: string }; notes?: string[] } | undefined;
    expect(check?.details?.key, probe.all).not.toBe(theirNewest);
    expect(check?.details?.key, probe.all).toBe(String(second.summary!.key));
    expect((check?.notes ?? []).join('\n'), probe.all).toMatch(/version before cluster ids/);
  });
});

describe('upgrading alone (nobody else writes format 2 into the folder)', () => {
  const t = new TestBucket('legacy-alone');
  afterAll(async () => {
    await t.clean();
  });

  it('our own format-2 history is kept on the first run, pruned from the second, with no warning left', async () => {
    const ourOld = await t.putSnapshotLike(new Date(Date.now() - 5 * day), 'ourold', { legacy: true });
    const leftover = await t.putSnapshotLike(new Date(Date.now() - 4 * day), 'ourkilled', { legacy: true, record: false });
    const first = await t.run([], keepOne);
    expect(first.code, first.all).toBe(0);
    expect(await t.keys()).toEqual(expect.arrayContaining([ourOld, `${ourOld}.json`, leftover]));
    const second = await t.run([], keepOne);
    expect(second.code, second.all).toBe(0);
    const keys = await t.keys();
    expect(keys).not.toContain(ourOld);
    expect(keys).not.toContain(`${ourOld}.json`);
    expect(keys).not.toContain(leftover);
    expect(second.summary!.legacyObjectsLeftAlone).toBeUndefined();
    expect(second.lines.some((l) => String(l.msg).startsWith('format-2 snapshots left alone')), second.all).toBe(false);
  });
});
