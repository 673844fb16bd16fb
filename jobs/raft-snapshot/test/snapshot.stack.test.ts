// The job against the real local stack: a snapshot taken through a standby, streamed, verified,
// stored with SSE-KMS and its record; list, verify, dry run; retention over objects of ours only,
// across more than one listing page.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { baoApi, baoOk } from '../../../test/stack/http.ts';
import { REPO_ROOT } from '../../../test/stack/layout.ts';
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
    // In the cluster's own folder: <prefix><name>/<cluster_id>/<name>-<time>-<run>.snap.
    const clusterId = String((await baoApi(stack.openbao.addr, 'GET', 'sys/health')).body.cluster_id);
    expect(s.clusterId).toBe(clusterId);
    expect(s.housekeepingWarnings).toEqual([]);
    expect(firstKey).toMatch(new RegExp(`^${t.clusterPrefix}${clusterId}/stack-\\d{8}T\\d{6}Z-[a-z0-9]+\\.snap$`));
    expect(await t.snapshots()).toEqual([firstKey]);
    expect(await t.uploads()).toEqual([]);
    // The snapshot, its record, the marker of the first format-3 snapshot (records clusterScope),
    // nothing else (no lock, no staging copy).
    expect((await t.keys()).sort()).toEqual([firstKey, `${firstKey}.json`, `${t.clusterPrefix}${clusterId}/.format-3-since`].sort());

    const head = await t.head(firstKey);
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(head.SSEKMSKeyId).toContain(stack.aws.dataKey.alias.replace(/^alias\//, ''));
    const body = await t.get(firstKey);
    const { createHash } = await import('node:crypto');
    const sha256 = createHash('sha256').update(body).digest('hex');
    expect(head.Metadata).toMatchObject({
      'vaultkeeper-job': 'raft-snapshot',
      'vaultkeeper-format': '3',
      cluster: 'stack',
      'cluster-id': clusterId,
      'raft-index': String(s.raftIndex),
      'raft-term': String(s.raftTerm),
      'vault-node': stack.openbao.nodes[leader]!.addr,
      'run-id': firstKey.replace(/^.*-([a-z0-9]+)\.snap$/, '$1'),
    });
    expect(head.Metadata!['vault-version']).toMatch(/^2\.6\./);
    // The record: what was verified, written only after the snapshot was stored.
    const record = await t.record(firstKey);
    expect(record).toMatchObject({
      job: 'raft-snapshot',
      format: 3,
      key: firstKey,
      cluster: 'stack',
      clusterId,
      sha256,
      size: body.length,
      raftIndex: String(s.raftIndex),
      raftTerm: String(s.raftTerm),
      vaultNode: stack.openbao.nodes[leader]!.addr,
      verified: ['gzip', 'tar', 'sha256sums', 'members', 'sealed-manifest'],
    });
    expect((record.members as Array<{ name: string }>).map((m) => m.name)).toEqual(['meta.json', 'state.bin', 'SHA256SUMS', 'SHA256SUMS.sealed']);
    expect(s.sha256).toBe(sha256);
    expect((await t.head(`${firstKey}.json`)).ServerSideEncryption).toBe('aws:kms');
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

    // Same metadata and record, one byte different: the record no longer matches.
    const body = await t.get(firstKey);
    body[body.length - 20]! ^= 0x01;
    const head = await t.head(firstKey);
    const damaged = firstKey.replace(/-([a-z0-9]+)\.snap$/, '-damaged.snap');
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: damaged, Body: body, Metadata: head.Metadata }));
    const record = { ...(await t.record(firstKey)), key: damaged };
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: `${damaged}.json`, Body: JSON.stringify(record) }));
    const bad = await t.run(['verify', damaged]);
    expect(bad.code).toBe(1);
    expect(bad.summary).toMatchObject({ key: damaged, verified: false });

    // The same bytes as the good one, but no record: never committed, so not trusted.
    const unrecorded = firstKey.replace(/-([a-z0-9]+)\.snap$/, '-unrecorded.snap');
    await t.s3.send(new PutObjectCommand({ Bucket: t.bucket, Key: unrecorded, Body: await t.get(firstKey), Metadata: head.Metadata }));
    const none = await t.run(['verify', unrecorded]);
    expect(none.code).toBe(1);
    expect(JSON.stringify(none.summary!.problems)).toContain('no record');
    const { DeleteObjectsCommand } = await import('@aws-sdk/client-s3');
    await t.s3.send(
      new DeleteObjectsCommand({ Bucket: t.bucket, Delete: { Objects: [damaged, `${damaged}.json`, unrecorded].map((Key) => ({ Key })) } }),
    );
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
    // 1,050 nightly snapshots of ours going back ~3 years: tiny objects carrying the job's metadata
    // and record (retention reads names, metadata and the records' presence only), and one foreign
    // object named like ours.
    const now = Date.now();
    for (let i = 0; i < 1050; i += 25) {
      await Promise.all(Array.from({ length: 25 }, (_, j) => t.putSnapshotLike(new Date(now - (i + j + 1) * 86_400_000), `fake${i + j + 1}`)));
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
    // Every kept snapshot of ours still has its record, and no record outlived its snapshot.
    const keys = new Set(await t.keys(t.clusterPrefix));
    for (const k of left) if (k !== foreign) expect(keys.has(`${k}.json`), k).toBe(true);
    for (const k of keys) if (k.endsWith('.json')) expect(keys.has(k.slice(0, -5)), k).toBe(true);
  }, 300_000);
});

describe('S3 keys from Vault (s3.credentialsFromVault), for stores with static keys only', () => {
  const t3 = new TestBucket('kvcreds');
  const { rootToken: token, addr } = stack.openbao;
  const path = `secret/data/vaultkeeper/raft-snapshot/s3-${process.pid}`;
  // moto takes any key pair; what matters is that these, and only these, reach S3 unprinted.
  const planted = { accessKeyId: `AKIAVK${Date.now()}`, secretAccessKey: `vk-s3-secret-${randomBytes(12).toString('hex')}` };
  const noAwsCredentials = { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined, AWS_SESSION_TOKEN: undefined, AWS_PROFILE: undefined };
  beforeAll(async () => {
    await baoOk(addr, 'POST', path, { token, body: { data: { access_key_id: planted.accessKeyId, secret_access_key: planted.secretAccessKey } } });
    // The job's policy with its commented-out KV grant switched on for this path.
    const hcl = readFileSync(join(REPO_ROOT, 'policies/raft-snapshot/policy.hcl'), 'utf8');
    await baoOk(addr, 'PUT', 'sys/policies/acl/vaultkeeper-raft-snapshot', { token, body: { policy: `${hcl}\npath "${path}" {\n  capabilities = ["read"]\n}\n` } });
  });
  afterAll(async () => {
    await applyJobPolicy();
    await baoOk(addr, 'DELETE', path.replace('/data/', '/metadata/'), { token });
    await t3.clean();
  });

  it('snapshot and list work with the keys read from Vault alone, which never appear in the output', async () => {
    // Without the KV path the SDK has no credentials at all: the run cannot reach S3.
    const without = await t3.run([], { ...noAwsCredentials });
    expect(without.code, without.all).toBe(1);

    const run = await t3.run([], { ...noAwsCredentials, SNAPSHOT_S3_CREDENTIALS_FROM_VAULT: path });
    expect(run.code, run.all).toBe(0);
    expect(lineWith(run, 'S3 credentials read from Vault')).toBeDefined();
    expect(await t3.snapshots()).toEqual([String(run.summary!.key)]);
    const list = await t3.run(['list'], { ...noAwsCredentials, SNAPSHOT_S3_CREDENTIALS_FROM_VAULT: path });
    expect(list.code, list.all).toBe(0);
    expect(list.summary).toMatchObject({ count: 1 });
    for (const r of [without, run, list]) expect(findPlantedSecrets(r.all, { secretAccessKey: planted.secretAccessKey })).toEqual([]);
  });
});

describe('a versioned bucket (the usual setting for a backup bucket)', () => {
  const name = `vk-versioned-${randomBytes(3).toString('hex')}`;
  const t4 = new TestBucket('versioned', name);
  const keepOne = { SNAPSHOT_KEEP_LAST: '1', SNAPSHOT_KEEP_DAILY: '0', SNAPSHOT_KEEP_WEEKLY: '0', SNAPSHOT_KEEP_MONTHLY: '0' };
  const versions = async () => {
    const { ListObjectVersionsCommand } = await import('@aws-sdk/client-s3');
    const res = await t4.s3.send(new ListObjectVersionsCommand({ Bucket: name }));
    return { versions: res.Versions ?? [], markers: res.DeleteMarkers ?? [] };
  };
  beforeAll(async () => {
    const { CreateBucketCommand, PutBucketVersioningCommand } = await import('@aws-sdk/client-s3');
    await t4.s3.send(new CreateBucketCommand({ Bucket: name }));
    await t4.s3.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }));
  });
  afterAll(async () => {
    const { DeleteBucketCommand, DeleteObjectsCommand } = await import('@aws-sdk/client-s3');
    const { versions: v, markers } = await versions();
    const all = [...v, ...markers].map((o) => ({ Key: o.Key!, VersionId: o.VersionId! }));
    if (all.length) await t4.s3.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects: all } }));
    await t4.s3.send(new DeleteBucketCommand({ Bucket: name }));
  });

  it('snapshots, prunes and takes its lock as on a plain bucket; pruned versions stay as noncurrent ones', async () => {
    const first = await t4.run([], keepOne);
    expect(first.code, first.all).toBe(0);
    // The lock was deleted (a delete marker on a versioned bucket); the next run takes it again.
    const second = await t4.run([], keepOne);
    expect(second.code, second.all).toBe(0);
    expect(second.summary).toMatchObject({ pruned: 1, kept: 1 });
    const [a, b] = [String(first.summary!.key), String(second.summary!.key)];
    expect((await t4.keys()).sort()).toEqual([b, `${b}.json`, `${await t4.ownPrefix()}.format-3-since`].sort());
    const verify = await t4.run(['verify']);
    expect(verify.code, verify.all).toBe(0);
    expect(verify.summary).toMatchObject({ key: b, verified: true });
    // What was pruned is hidden behind delete markers, kept by S3 until the bucket's lifecycle
    // rules expire noncurrent versions (docs/raft-snapshot.md).
    const { versions: v, markers } = await versions();
    expect(v.filter((o) => o.Key === a && !o.IsLatest)).toHaveLength(1);
    expect(markers.map((m) => m.Key)).toEqual(expect.arrayContaining([a, `${a}.json`]));
  });
});

describe('what an earlier run left behind', () => {
  const t2 = new TestBucket('leftovers');
  afterAll(async () => {
    await t2.clean();
  });

  it('the next run removes uncommitted snapshots, stray records and abandoned uploads, and nothing else', async () => {
    const { CreateMultipartUploadCommand } = await import('@aws-sdk/client-s3');
    const day = 86_400_000;
    const committed = await t2.putSnapshotLike(new Date(Date.now() - 2 * day), 'kept');
    // Killed after CompleteMultipartUpload, before its record: a whole object that never counted.
    const uncommitted = await t2.putSnapshotLike(new Date(Date.now() - day), 'killed', { record: false });
    // A prune that deleted the snapshot and stopped before its record.
    const stray = `${await t2.putSnapshotLike(new Date(Date.now() - 3 * day), 'stray')}.json`;
    await t2.s3.send(new (await import('@aws-sdk/client-s3')).DeleteObjectCommand({ Bucket: t2.bucket, Key: stray.slice(0, -5) }));
    // Killed mid-stream: a multipart upload never completed.
    const abandoned = `${await t2.ownPrefix()}stack-20260101T000000Z-abandoned.snap`;
    await t2.s3.send(new CreateMultipartUploadCommand({ Bucket: t2.bucket, Key: abandoned }));
    const foreign = `${t2.clusterPrefix}stack-20200101T000000Z-foreign.snap`;
    await t2.s3.send(new PutObjectCommand({ Bucket: t2.bucket, Key: foreign, Body: 'not ours' }));

    const list = await t2.run(['list']);
    expect(list.stderr).toMatch(/killed\.snap/);
    expect(list.stderr).toContain('never committed');
    expect(list.stderr).toContain('in progress (multipart upload)');

    const run = await t2.run([]);
    expect(run.code, run.all).toBe(0);
    const keys = await t2.keys();
    expect(keys).toContain(committed);
    expect(keys).toContain(`${committed}.json`);
    expect(keys).toContain(foreign);
    expect(keys).not.toContain(uncommitted);
    expect(keys).not.toContain(stray);
    expect(await t2.uploads()).toEqual([]);
    expect(keys).toContain(String(run.summary!.key));
    expect(keys.sort()).toEqual([committed, `${committed}.json`, foreign, String(run.summary!.key), `${String(run.summary!.key)}.json`, `${await t2.ownPrefix()}.format-3-since`].sort());
  });
});
