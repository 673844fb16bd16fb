// Housekeeping never costs a backup: cleaning up what earlier runs left, and pruning, may fail in
// every way S3 can fail (an object gone between LIST and HEAD, a permission missing, a per-key
// DeleteObjects error) and the run still stores and keeps its verified snapshot, saying what went
// wrong as a warning, in the summary and as a metric. And every object the job writes carries the
// same encryption headers, so a bucket policy that insists on SSE-KMS refuses none of them.
import { CreateMultipartUploadCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStack } from '../../../test/stack/stack.ts';
import { S3FaultProxy } from './proxies.ts';
import { TestBucket, applyJobPolicy, lineWith } from './stack-fixture.ts';

const stack = readStack();
const day = 86_400_000;
const keepOne = { SNAPSHOT_KEEP_LAST: '1', SNAPSHOT_KEEP_DAILY: '0', SNAPSHOT_KEEP_WEEKLY: '0', SNAPSHOT_KEEP_MONTHLY: '0' };
let proxy: S3FaultProxy;

beforeAll(async () => {
  await applyJobPolicy();
  proxy = await new S3FaultProxy(stack.aws.endpoint).start();
});
afterAll(async () => {
  await proxy.stop();
});

async function pushedHousekeepingWarnings(): Promise<number | undefined> {
  const text = await (await fetch(`${stack.pushgateway.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('vaultkeeper_raft_snapshot_housekeeping_warnings{') && l.includes('job="vaultkeeper_raft_snapshot"'));
  return line ? Number(line.split(' ').at(-1)) : undefined;
}

/** The run stored its snapshot, committed and intact, and reported the housekeeping trouble as a warning. */
async function expectStoredDespite(t: TestBucket, run: Awaited<ReturnType<TestBucket['run']>>, warning: RegExp): Promise<string> {
  expect(run.code, run.all).toBe(0);
  const s = run.summary!;
  expect(s.outcome).toBe('success');
  const key = String(s.key);
  expect(await t.snapshots()).toContain(key);
  expect((await t.keys()).filter((k) => k === `${key}.json`)).toHaveLength(1);
  const warnings = s.housekeepingWarnings as string[];
  expect(warnings.length, run.all).toBeGreaterThan(0);
  expect(warnings.join('\n')).toMatch(warning);
  expect(run.lines.some((l) => l.level === 'warn' && String(l.msg).startsWith('housekeeping:')), run.all).toBe(true);
  expect(run.lines.some((l) => l.msg === 'snapshot discarded: no multipart upload, object or record left')).toBe(false);
  expect(await pushedHousekeepingWarnings()).toBe(warnings.length);
  const verify = await t.run(['verify', key]);
  expect(verify.code, verify.all).toBe(0);
  return key;
}

describe('housekeeping never costs a backup', () => {
  it('an old snapshot deleted between LIST and HEAD (a lifecycle rule, a person) is skipped', async () => {
    const t = new TestBucket('hk-head404');
    try {
      const gone = await t.putSnapshotLike(new Date(Date.now() - 3 * day), 'vanishes');
      proxy.faults = {
        beforeHead: async (key) => {
          if (key === gone) await t.s3.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: gone }));
        },
      };
      const run = await t.run([], { AWS_ENDPOINT_URL: proxy.url });
      await expectStoredDespite(t, run, /vanishes\.snap/);
    } finally {
      proxy.faults = {};
      await t.clean();
    }
  });

  it('ListMultipartUploads denied: leftovers stay, the run succeeds', async () => {
    const t = new TestBucket('hk-nolist');
    try {
      await t.s3.send(new CreateMultipartUploadCommand({ Bucket: t.bucket, Key: `${await t.ownPrefix()}stack-20260101T000000Z-abandoned.snap` }));
      proxy.faults = { deny: ['ListMultipartUploads'] };
      proxy.refused.length = 0;
      const run = await t.run([], { AWS_ENDPOINT_URL: proxy.url });
      expect(proxy.refused.some((r) => r.startsWith('ListMultipartUploads'))).toBe(true);
      await expectStoredDespite(t, run, /AccessDenied|Access Denied/);
      expect(await t.uploads()).toHaveLength(1);
    } finally {
      proxy.faults = {};
      await t.clean();
    }
  });

  it('AbortMultipartUpload denied: the abandoned upload stays, the run succeeds', async () => {
    const t = new TestBucket('hk-noabort');
    try {
      const abandoned = `${await t.ownPrefix()}stack-20260101T000000Z-abandoned.snap`;
      await t.s3.send(new CreateMultipartUploadCommand({ Bucket: t.bucket, Key: abandoned }));
      proxy.faults = { deny: ['AbortMultipartUpload'] };
      proxy.refused.length = 0;
      const run = await t.run([], { AWS_ENDPOINT_URL: proxy.url });
      expect(proxy.refused).toContain(`AbortMultipartUpload ${abandoned}`);
      await expectStoredDespite(t, run, /abandoned\.snap/);
      expect((await t.uploads()).map((u) => u.Key)).toEqual([abandoned]);
    } finally {
      proxy.faults = {};
      await t.clean();
    }
  });

  it('DeleteObjects refuses some keys (cleanup and pruning): the rest is done, the new snapshot is kept', async () => {
    const t = new TestBucket('hk-delete');
    try {
      const leftover = await t.putSnapshotLike(new Date(Date.now() - day), 'killedrefuse', { record: false });
      const oldRefused = await t.putSnapshotLike(new Date(Date.now() - 2 * day), 'oldrefuse');
      const oldPrunable = await t.putSnapshotLike(new Date(Date.now() - 3 * day), 'oldok');
      proxy.faults = { refuseDelete: (key) => key.includes('refuse') };
      proxy.refused.length = 0;
      const run = await t.run([], { AWS_ENDPOINT_URL: proxy.url, ...keepOne });
      expect(proxy.refused).toContain(`DeleteObjects ${leftover}`);
      expect(proxy.refused).toContain(`DeleteObjects ${oldRefused}.json`);
      const key = await expectStoredDespite(t, run, /refuse/);
      // Kept: the new one, and the one whose record S3 would not delete (still committed).
      expect(run.summary).toMatchObject({ kept: 2, pruned: 1 });
      const keys = await t.keys();
      // What S3 refused is still there; what it accepted is gone; ours is kept.
      expect(keys).toContain(leftover);
      expect(keys).toContain(oldRefused);
      expect(keys).not.toContain(oldPrunable);
      expect(keys).not.toContain(`${oldPrunable}.json`);
      expect(keys).toContain(key);
    } finally {
      proxy.faults = {};
      await t.clean();
    }
  });
});

describe('every object the job writes carries the same encryption headers', () => {
  it('a bucket policy that denies PutObject without aws:kms refuses neither the lock, the snapshot nor the record', async () => {
    const t = new TestBucket('hk-ssekms');
    try {
      proxy.faults = { requireKms: true };
      proxy.refused.length = 0;
      proxy.writes.length = 0;
      const run = await t.run([], { AWS_ENDPOINT_URL: proxy.url });
      expect(proxy.refused, run.all).toEqual([]);
      expect(run.code, run.all).toBe(0);
      const key = String(run.summary!.key);
      const written = proxy.writes.filter((w) => w.key.startsWith(t.prefix));
      expect(written.map((w) => w.key).sort()).toEqual(
        expect.arrayContaining([key, `${key}.json`, expect.stringMatching(/\/\.lock$/)]),
      );
      for (const w of written) expect(w.sse, `${w.op} ${w.key}`).toBe('aws:kms');
      expect(lineWith(run, 'lock released')).toBeDefined();
    } finally {
      proxy.faults = {};
      await t.clean();
    }
  });
});
