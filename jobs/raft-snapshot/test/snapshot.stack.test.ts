// The job against the real local stack: a snapshot taken through a standby, streamed, verified,
// stored with SSE-KMS and its record; list, verify, dry run; retention over objects of ours only,
// across more than one listing page.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leaderIndex, readStack } from '../../../test/stack/stack.ts';
import { findPlantedSecrets } from '../../../test/support/run-job.ts';
import { tarMembers } from './proxies.ts';
import { TestBucket, applyJobPolicy, lineWith } from './stack-fixture.ts';

const t = new TestBucket('main');
const stack = readStack();
// (moto's AWS secret is the word "test": not searchable, and not a secret.)
const secrets = { rootToken: stack.openbao.rootToken, recoveryKey: stack.openbao.recoveryKey };

beforeAll(async () => {
  await applyJobPolicy();
});
afterAll(async () => {
  await t.clean();
});

describe('raft-snapshot against the stack', () => {
  let firstKey = '';

  it('takes a snapshot through a standby and stores it verified, encrypted and described', async () => {
    const leader = await leaderIndex();
    const standby = stack.openbao.nodes.find((n) => n.index !== leader)!;
    const run = await t.run([], { VAULT_ADDR: standby.addr });
    expect(run.code, run.all).toBe(0);
    expect(findPlantedSecrets(run.all, secrets)).toEqual([]);
    const s = run.summary!;
    expect(s.outcome).toBe('success');
    expect(s.node).toBe(stack.openbao.nodes[leader]!.addr);
    firstKey = String(s.key);
    expect(firstKey).toMatch(new RegExp(`^${t.clusterPrefix}stack-\\d{8}T\\d{6}Z-[a-z0-9]+\\.snap$`));
    expect(await t.snapshots()).toEqual([firstKey]);
    expect(await t.uploads()).toEqual([]);
    expect((await t.keys()).filter((k) => k.includes('.incoming/') || k.endsWith('.lock'))).toEqual([]);

    const head = await t.head(firstKey);
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(head.SSEKMSKeyId).toContain(stack.aws.dataKey.alias.replace(/^alias\//, ''));
    const body = await t.get(firstKey);
    const { createHash } = await import('node:crypto');
    expect(head.Metadata).toMatchObject({
      'vaultkeeper-job': 'raft-snapshot',
      cluster: 'stack',
      sha256: createHash('sha256').update(body).digest('hex'),
      size: String(body.length),
      'raft-index': String(s.raftIndex),
      'vault-node': stack.openbao.nodes[leader]!.addr,
    });
    expect(head.Metadata!['vault-version']).toMatch(/^2\.6\./);
    // The stored bytes are a complete Raft snapshot.
    const members = tarMembers(gunzipSync(body)).map((m) => m.name);
    expect(members).toEqual(['meta.json', 'state.bin', 'SHA256SUMS', 'SHA256SUMS.sealed']);
    expect(lineWith(run, 'lock released')).toBeDefined();
    expect(lineWith(run, 'login token revoked')).toBeDefined();
  });

  it('verify checks a stored object, and catches one whose bytes changed in the bucket', async () => {
    const ok = await t.run(['verify']);
    expect(ok.code, ok.all).toBe(0);
    expect(ok.summary).toMatchObject({ key: firstKey, verified: true });

    // Same metadata, one byte different: the record no longer matches.
    const body = await t.get(firstKey);
    body[body.length - 20]! ^= 0x01;
    const head = await t.head(firstKey);
    const damaged = firstKey.replace(/-([a-z0-9]+)\.snap$/, '-damaged.snap');
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: damaged, Body: body, Metadata: head.Metadata }));
    const bad = await t.run(['verify', damaged]);
    expect(bad.code).toBe(1);
    expect(bad.summary).toMatchObject({ key: damaged, verified: false });
    await t.s3.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: t.bucket, Key: damaged }));
  });

  it('list shows what is stored; --dry-run changes nothing', async () => {
    const list = await t.run(['list']);
    expect(list.code, list.all).toBe(0);
    expect(list.summary).toMatchObject({ count: 1, clusters: ['stack'] });
    expect(list.stderr).toContain(firstKey);
    expect(list.stderr).toMatch(/VERIFIED/);

    const before = await t.keys();
    const dry = await t.run(['--dry-run']);
    expect(dry.code, dry.all).toBe(0);
    expect(dry.summary).toMatchObject({ dryRun: true, wouldPrune: [] });
    expect(String(dry.summary!.wouldUpload)).toMatch(/\.snap$/);
    expect(await t.keys()).toEqual(before);
  });

  it('prunes by generation, only objects of its own, past the first listing page', async () => {
    // 1,050 nightly snapshots of ours going back ~3 years: tiny objects carrying the job's record
    // (retention reads names and metadata only), and one foreign object named like ours.
    const head = await t.head(firstKey);
    const now = Date.now();
    const fake: string[] = [];
    for (let d = 1; d <= 1050; d++) {
      const at = new Date(now - d * 86_400_000);
      const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
      fake.push(`${t.clusterPrefix}stack-${stamp}-fake${d}.snap`);
    }
    for (let i = 0; i < fake.length; i += 25) {
      await Promise.all(
        fake.slice(i, i + 25).map((Key, j) =>
          t.s3.send(
            new PutObjectCommand({
              Bucket: t.bucket,
              Key,
              Body: 'stand-in',
              Metadata: { ...head.Metadata, 'taken-at': new Date(now - (i + j + 1) * 86_400_000).toISOString() },
            }),
          ),
        ),
      );
    }
    const foreign = `${t.clusterPrefix}stack-20200101T000000Z-foreign.snap`;
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: foreign, Body: 'not ours' }));

    const dry = await t.run(['--dry-run'], { SNAPSHOT_KEEP_LAST: '2', SNAPSHOT_KEEP_DAILY: '5', SNAPSHOT_KEEP_WEEKLY: '3', SNAPSHOT_KEEP_MONTHLY: '2' });
    expect(dry.code, dry.all).toBe(0);
    const wouldPrune = dry.summary!.wouldPrune as string[];
    expect(wouldPrune.length).toBeGreaterThan(1000);
    expect(wouldPrune).not.toContain(foreign);
    expect(await t.snapshots()).toHaveLength(1052);

    const run = await t.run([], { SNAPSHOT_KEEP_LAST: '2', SNAPSHOT_KEEP_DAILY: '5', SNAPSHOT_KEEP_WEEKLY: '3', SNAPSHOT_KEEP_MONTHLY: '2' });
    expect(run.code, run.all).toBe(0);
    const left = await t.snapshots();
    // daily 5 (incl. last 2 and the new one), + older weeks and months; never the foreign object.
    expect(left).toContain(foreign);
    expect(left).toContain(String(run.summary!.key));
    expect(run.summary!.kept).toBe(left.length - 1);
    expect(left.length).toBeLessThanOrEqual(2 + 5 + 3 + 2 + 1);
    expect(run.summary!.pruned).toBe(1052 - Number(run.summary!.kept));
  }, 300_000);
});

describe('committing a snapshot larger than one CopyObject allows (5 GiB on S3)', () => {
  const t2 = new TestBucket('bigcopy');
  afterAll(async () => {
    await t2.clean();
  });

  it('copies part by part, with the record, and leaves no upload behind', async () => {
    const { commitSnapshot } = await import('../src/s3-upload.ts');
    const { createLogger } = await import('@vaultkeeper/runtime');
    const { randomBytes, createHash } = await import('node:crypto');
    const body = randomBytes(12 * 1024 * 1024 + 123);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const from = `${t2.clusterPrefix}.incoming/big.snap`;
    const to = `${t2.clusterPrefix}stack-20250101T000000Z-big.snap`;
    await t2.s3.send(new PutObjectCommand({ Bucket: t2.bucket, Key: from, Body: body }));
    const s3 = { bucket: t2.bucket, prefix: t2.prefix, region: stack.aws.region, forcePathStyle: true, kmsKeyId: stack.aws.dataKey.alias, partSizeMiB: 8, concurrency: 2, requestTimeoutSeconds: 30 };
    const metadata = {
      'vaultkeeper-job': 'raft-snapshot', 'vaultkeeper-format': '1', cluster: 'stack', sha256, size: String(body.length),
      'raft-index': '1', 'raft-term': '1', 'vault-version': 'test', 'vault-node': 'test', 'taken-at': new Date().toISOString(), 'run-id': 'big', verified: 'test',
    };
    await commitSnapshot({
      client: t2.s3, s3, from, to, size: body.length, metadata, log: createLogger({ job: 'test', level: 'warn' }), signal: AbortSignal.timeout(60_000),
      singleCopyLimit: 1024 * 1024, copyPartSize: 5 * 1024 * 1024,
    });
    const stored = await t2.get(to);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(sha256);
    const head = await t2.head(to);
    expect(head.Metadata).toMatchObject({ sha256, size: String(body.length) });
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(await t2.uploads()).toEqual([]);
    expect(await t2.keys()).toEqual([to]);
  });
});
