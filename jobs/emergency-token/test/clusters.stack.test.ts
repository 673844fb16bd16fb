// One bucket, two real Vault clusters: two fresh single-node OpenBao servers (the real bao
// binary, Raft, the stack's awskms seal), each with its own cluster_id, bootstrapped with the
// job's own policies and token roles. Their envelopes never meet: the default S3 key and the KMS
// encryption context follow each cluster's identity (sys/health), reveal refuses the other
// cluster's envelope, and a rotation given the other cluster's key by hand refuses to overwrite it.
import { join } from 'node:path';
import { GenerateDataKeyCommand } from '@aws-sdk/client-kms';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectVersionsCommand, PutBucketVersioningCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoOk } from '../../../test/stack/http.ts';
import { POLICIES_DIR } from '../../../test/stack/layout.ts';
import { applyPolicies, loadPolicies } from '../../../test/stack/policies.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { findPlantedSecrets, runJobProcess, type JobRun } from '../../../test/support/run-job.ts';
import { startFreshBao, type FreshBao } from '../../raft-snapshot/test/stack-fixture.ts';
import { fingerprint } from '../src/fingerprint.ts';
import { sealEnvelope } from '../src/sinks/envelope.ts';
import { stateRecord, type StateRecord } from '../src/state-record.ts';
import { JOB, awsClients, clusterIdOf, messages, sinkHolds } from './stack-fixture.ts';

interface Cluster {
  bao: FreshBao;
  id: string;
  /** A token with exactly the job's policy, on that cluster. */
  jobToken: string;
  /** The default key the job must choose there. */
  key: string;
}

const clusters: Cluster[] = [];
const bucket = () => readStack().aws.buckets.breakglass;

async function freshCluster(apiPort: number, nodeId: string): Promise<Cluster> {
  const bao = await startFreshBao({ apiPort, clusterPort: apiPort - 1, nodeId });
  const token = bao.rootToken;
  await baoOk(bao.api, 'POST', 'sys/mounts/secret', { token, body: { type: 'kv', options: { version: '2' } } });
  const all = loadPolicies();
  const mine = (f: string) => f.startsWith(join(POLICIES_DIR, JOB) + '/');
  await applyPolicies(bao.api, token, { policies: all.policies.filter((p) => mine(p.file)), tokenRoles: all.tokenRoles.filter((r) => mine(r.file)), kubernetesRoles: [], approleRoles: [] });
  const created = await baoOk<{ auth: { client_token: string } }>(bao.api, 'POST', 'auth/token/create', {
    token,
    body: { policies: ['vaultkeeper-emergency-token'], no_default_policy: true, ttl: '30m' },
  });
  const id = await clusterIdOf(bao.api);
  return { bao, id, jobToken: created.auth.client_token, key: `emergency-token/${id}/breakglass.json` };
}

/** The job against cluster `c`, logged in with its job token, with the defaults for key and cluster. */
function runOn(c: Cluster, args: string[], env: Record<string, string | undefined> = {}): Promise<JobRun> {
  return runJobProcess({
    job: JOB,
    args,
    auth: 'none',
    env: { VAULT_ADDR: c.bao.api, VAULT_FALLBACK_ADDRS: undefined, VAULT_TOKEN: c.jobToken, BREAKGLASS_S3_BUCKET: bucket(), BREAKGLASS_CLI: 'bao', ...env },
  });
}

async function stateOn(c: Cluster, path = 'vaultkeeper/emergency-token/state'): Promise<StateRecord> {
  const res = await baoOk<{ data: { data: unknown } }>(c.bao.api, 'GET', `secret/data/${path}`, { token: c.bao.rootToken });
  return stateRecord.parse(res.data.data);
}

const heldBy = (c: Cluster) => sinkHolds({ s3Key: c.key, cluster: c.id }, { clusterId: c.id });

beforeAll(async () => {
  clusters.push(await freshCluster(18294, 'et-one'), await freshCluster(18296, 'et-two'));
}, 180_000);

afterAll(async () => {
  const { s3 } = awsClients();
  for (const c of clusters) {
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket(), Prefix: c.key })).catch(() => undefined);
    for (const v of listed?.Versions ?? []) await s3.send(new DeleteObjectCommand({ Bucket: bucket(), Key: v.Key, VersionId: v.VersionId })).catch(() => undefined);
    await c.bao.stop();
  }
  s3.destroy();
});

describe('two clusters, one bucket', () => {
  it("each cluster's envelope goes under its own cluster_id; reveal refuses the other's; a rotation given the other's key refuses to overwrite it", async () => {
    const [one, two] = clusters as [Cluster, Cluster];
    expect(one.id).not.toBe(two.id);

    const first = await runOn(one, []);
    expect(first.code, first.all).toBe(0);
    const second = await runOn(two, []);
    expect(second.code, second.all).toBe(0);

    const [a, b] = [await stateOn(one), await stateOn(two)];
    expect(a.sink).toContain(`s3://${bucket()}/${one.key}?versionId=`);
    expect(b.sink).toContain(`s3://${bucket()}/${two.key}?versionId=`);
    const heldOne = (await heldBy(one))!;
    const heldTwo = (await heldBy(two))!;
    expect(heldOne.accessor, "the second cluster's run left the first one's envelope alone").toBe(a.accessor);
    expect(heldTwo.accessor).toBe(b.accessor);
    const secrets = { one: heldOne.secret, two: heldTwo.secret };
    expect(findPlantedSecrets(first.all + second.all, secrets)).toEqual([]);

    // reveal finds its own cluster's envelope by itself (sys/health, no token, no label)...
    const shown = await runOn(one, ['reveal', '--force'], { VAULT_TOKEN: undefined });
    expect(shown.code, shown.all).toBe(0);
    expect(shown.summary).toMatchObject({ accessor: a.accessor });
    // ...and refuses the other cluster's, even when pointed at it by hand.
    const wrong = await runOn(two, ['reveal', '--force'], { VAULT_TOKEN: undefined, BREAKGLASS_S3_KEY: one.key });
    expect(wrong.code, wrong.all).toBe(1);
    expect(wrong.all).toMatch(new RegExp(`another Vault cluster .*cluster id ${one.id}`));
    expect(findPlantedSecrets(wrong.all, secrets)).toEqual([]);

    // A rotation on the second cluster given the first one's key: refused before anything exists.
    const clash = await runOn(two, ['--force'], { BREAKGLASS_S3_KEY: one.key });
    expect(clash.code, clash.all).toBe(1);
    expect(clash.all).toMatch(new RegExp(`holds the envelope of another Vault cluster .*cluster id ${one.id}.*; refusing`));
    expect(messages(clash)).not.toContain('new credential created and recorded as pending');
    // The same with no record yet (its first run): the sink's preflight reads the header and refuses.
    const firstClash = await runOn(two, [], { BREAKGLASS_S3_KEY: one.key, BREAKGLASS_STATE_PATH: 'vaultkeeper/emergency-token/clash' });
    expect(firstClash.code, firstClash.all).toBe(1);
    expect(firstClash.all).toMatch(/refusing to overwrite it/);
    expect(messages(firstClash)).not.toContain('new credential created and recorded as pending');
    expect((await heldBy(one))!.accessor).toBe(a.accessor);
    expect((await stateOn(two)).accessor).toBe(b.accessor);
  });
});

describe('upgrading from the constant default (BREAKGLASS_CLUSTER was `vault`)', () => {
  const LEGACY_KEY = 'emergency-token/vault/breakglass.json';
  const statePath = 'vaultkeeper/emergency-token/upgrade';
  // Its own versioned bucket: the old default key is a shared name.
  const upgradeBucket = `vk-et-upgrade-${process.pid}`;
  const { s3, kms } = awsClients();

  afterAll(async () => {
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: upgradeBucket })).catch(() => undefined);
    for (const v of listed?.Versions ?? []) await s3.send(new DeleteObjectCommand({ Bucket: upgradeBucket, Key: v.Key, VersionId: v.VersionId })).catch(() => undefined);
    await s3.send(new DeleteBucketCommand({ Bucket: upgradeBucket })).catch(() => undefined);
    s3.destroy();
    kms.destroy();
  });

  /** What the previous version left: a live launcher, its envelope at the old key with the old context, and the record naming it. */
  async function leaveLegacyDeployment(c: Cluster): Promise<{ accessor: string; secret: string }> {
    await s3.send(new CreateBucketCommand({ Bucket: upgradeBucket }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: upgradeBucket, VersioningConfiguration: { Status: 'Enabled' } }));
    const made = await baoOk<{ auth: { client_token: string; accessor: string } }>(c.bao.api, 'POST', 'auth/token/create/breakglass-launcher', { token: c.bao.rootToken, body: { ttl: '744h' } });
    const { client_token: secret, accessor } = made.auth;
    const looked = await baoOk<{ data: { issue_time: string; expire_time: string } }>(c.bao.api, 'POST', 'auth/token/lookup-accessor', { token: c.bao.rootToken, body: { accessor } });
    const createdAt = new Date(looked.data.issue_time).toISOString();
    const expiresAt = new Date(looked.data.expire_time).toISOString();
    const credential = { kind: 'launcher', secret, accessor, createdAt, expiresAt, fingerprint: fingerprint(secret), vaultAddress: c.bao.api, mintWith: 'breakglass-admin', purpose: 'test', rotatedBy: 'vaultkeeper-emergency-token', runId: 'before-upgrade' } as const;
    const encryptionContext = { cluster: 'vault', purpose: 'vaultkeeper-breakglass' };
    const key = await kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/vaultkeeper-data', KeySpec: 'AES_256', EncryptionContext: encryptionContext }));
    const sealed = sealEnvelope(Buffer.from(JSON.stringify(credential)), { plaintext: key.Plaintext! }, {
      kmsKeyId: key.KeyId!,
      encryptionContext,
      encryptedDataKey: Buffer.from(key.CiphertextBlob!).toString('base64'),
      kind: 'launcher',
      accessor,
      fingerprint: credential.fingerprint,
      createdAt,
      expiresAt,
    });
    const put = await s3.send(new PutObjectCommand({ Bucket: upgradeBucket, Key: LEGACY_KEY, Body: JSON.stringify(sealed), ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'alias/vaultkeeper-data', Metadata: { accessor } }));
    await baoOk(c.bao.api, 'POST', `secret/data/${statePath}`, {
      token: c.bao.rootToken,
      body: { data: { kind: 'launcher', accessor, createdAt, expiresAt, fingerprint: credential.fingerprint, sink: `s3://${upgradeBucket}/${LEGACY_KEY}?versionId=${put.VersionId}`, rotatedAt: createdAt, rotatedBy: 'vaultkeeper-emergency-token', runId: 'before-upgrade' } },
    });
    return { accessor, secret };
  }

  it('the old envelope keeps working until the first rotation, which moves it to the cluster_id key and says so', async () => {
    const c = clusters[0]!;
    const legacy = await leaveLegacyDeployment(c);
    const env = { BREAKGLASS_S3_BUCKET: upgradeBucket, BREAKGLASS_STATE_PATH: statePath, VAULT_TOKEN: undefined };

    // The bad day right after the upgrade: reveal at the new default finds nothing and says where to look...
    const nothing = await runOn(c, ['reveal', '--force'], env);
    expect(nothing.code, nothing.all).toBe(1);
    expect(nothing.all).toContain(`still at ${LEGACY_KEY}: run reveal with BREAKGLASS_CLUSTER=vault`);
    // ...and with the old label it shows the old, live launcher, noting what cannot be checked.
    const old = await runOn(c, ['reveal', '--force'], { ...env, BREAKGLASS_CLUSTER: 'vault' });
    expect(old.code, old.all).toBe(0);
    expect(old.summary).toMatchObject({ accessor: legacy.accessor });
    expect(old.stdout).toContain('written before envelopes named their Vault cluster id');

    // The first run after the upgrade rotates at once (the credential is young), to the new key.
    const run = await runOn(c, [], { ...env, VAULT_TOKEN: c.jobToken });
    expect(run.code, run.all).toBe(0);
    expect(String(run.summary?.reason)).toBe(`the credential is recorded at s3://${upgradeBucket}/${LEGACY_KEY} and the sink is now s3://${upgradeBucket}/${c.key}: a new one is delivered there`);
    const after = await stateOn(c, statePath);
    expect(after.sink).toContain(`s3://${upgradeBucket}/${c.key}?versionId=`);
    expect(run.summary).toMatchObject({ previousAccessor: legacy.accessor, previousRevoked: 'revoked' });
    const shown = await runOn(c, ['reveal', '--force'], env);
    expect(shown.code, shown.all).toBe(0);
    expect(shown.summary).toMatchObject({ accessor: after.accessor });
    expect(findPlantedSecrets(run.all + nothing.all, { legacy: legacy.secret })).toEqual([]);
  });
});

describe('a sealed node', () => {
  // Last in this file: it seals the second cluster for good. A sealed (initialised) OpenBao
  // 2.6.2 answers sys/health 503 with initialized: true, sealed: true and no cluster_id or
  // cluster_name (seen on the real binary); sys/seal-status has no cluster_id either.
  it('reveal through a sealed node says it is sealed and opens the envelope with BREAKGLASS_CLUSTER_ID; an override that disagrees with the cluster is refused', async () => {
    const [one, two] = clusters as [Cluster, Cluster];
    const rotated = await runOn(two, ['--force']);
    expect(rotated.code, rotated.all).toBe(0);
    const state = await stateOn(two);
    await baoOk(two.bao.api, 'PUT', 'sys/seal', { token: two.bao.rootToken });

    const blind = await runOn(two, ['reveal', '--force'], { VAULT_TOKEN: undefined });
    expect(blind.code, blind.all).toBe(1);
    expect(blind.all).toMatch(/sealed.*BREAKGLASS_CLUSTER_ID/);
    expect(blind.all).not.toMatch(/not initialised/);

    const shown = await runOn(two, ['reveal', '--force'], { VAULT_TOKEN: undefined, BREAKGLASS_CLUSTER_ID: two.id });
    expect(shown.code, shown.all).toBe(0);
    expect(shown.summary).toMatchObject({ accessor: state.accessor });

    // A sealed first address is not the end: the next configured node that reports a cluster_id
    // answers. (Here that node is the other test cluster, standing in for an unsealed pod.)
    const oneRotated = await runOn(one, ['--force']);
    expect(oneRotated.code, oneRotated.all).toBe(0);
    const viaNext = await runOn(two, ['reveal', '--force'], { VAULT_TOKEN: undefined, VAULT_FALLBACK_ADDRS: one.bao.api });
    expect(viaNext.code, viaNext.all).toBe(0);
    expect(viaNext.summary).toMatchObject({ accessor: (await stateOn(one)).accessor });

    // Where a node does answer with its cluster_id, an override naming another cluster is a mistake.
    const clash = await runOn(one, ['reveal', '--force'], { VAULT_TOKEN: undefined, BREAKGLASS_CLUSTER_ID: two.id });
    expect(clash.code, clash.all).toBe(1);
    expect(clash.all).toMatch(new RegExp(`BREAKGLASS_CLUSTER_ID.*${two.id}.*${one.id}|${one.id}.*BREAKGLASS_CLUSTER_ID`));
  });
});
