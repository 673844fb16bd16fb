// Which objects belong to which cluster. `list` and `verify` find what `snapshot` stored whatever
// the case and length of the configured cluster name, and two real clusters that share a bucket,
// a prefix and a cluster_name (a second, fresh single-node OpenBao named like the stack) keep
// their generations apart: neither prunes, sweeps or locks out the other, and the job says
// loudly that two clusters share one folder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi } from '../../../test/stack/http.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { findPlantedSecrets } from '../../../test/support/run-job.ts';
import { TestBucket, applyJobPolicy, startFreshBao, type FreshBao } from './stack-fixture.ts';

const stack = readStack();
const keepOne = { SNAPSHOT_KEEP_LAST: '1', SNAPSHOT_KEEP_DAILY: '0', SNAPSHOT_KEEP_WEEKLY: '0', SNAPSHOT_KEEP_MONTHLY: '0' };

beforeAll(async () => {
  await applyJobPolicy();
});

describe('list and verify find what snapshot stored, whatever the cluster name looks like', () => {
  const t = new TestBucket('names');
  afterAll(async () => {
    await t.clean();
  });

  it.each([
    ['mixed case', 'HoProd'],
    ['longer than 63 characters, with spaces', `Prod EU ${'x'.repeat(70)}`],
  ])('%s', async (_what, name) => {
    const env = { SNAPSHOT_CLUSTER: name };
    const run = await t.run([], env);
    expect(run.code, run.all).toBe(0);
    const key = String(run.summary!.key);
    const list = await t.run(['list'], env);
    expect(list.code, list.all).toBe(0);
    expect((list.summary!.snapshots as Array<{ key: string }>).map((s) => s.key)).toContain(key);
    const verify = await t.run(['verify'], env);
    expect(verify.code, verify.all).toBe(0);
    expect(verify.summary).toMatchObject({ key, verified: true });
  });
});

describe('two clusters with the same name in one bucket and prefix', () => {
  const t = new TestBucket('twins');
  let other: FreshBao | undefined;
  let stackName = '';
  let stackId = '';
  beforeAll(async () => {
    const health = await baoApi(stack.openbao.addr, 'GET', 'sys/health');
    stackName = String(health.body.cluster_name);
    stackId = String(health.body.cluster_id);
    other = await startFreshBao({ apiPort: 18292, clusterPort: 18291, nodeId: 'twin-1', clusterName: stackName });
  }, 120_000);
  afterAll(async () => {
    await other?.stop();
    await t.clean();
  });

  // The name comes from sys/health, as in a cluster where nobody set snapshot.cluster.
  const runStack = (args: string[] = []) => t.run(args, { ...keepOne, SNAPSHOT_CLUSTER: undefined });
  const runOther = (args: string[] = []) =>
    t.run(args, { ...keepOne, SNAPSHOT_CLUSTER: undefined, VAULT_ADDR: other!.api, VAULT_TOKEN: other!.rootToken }, { auth: 'none' });

  it('never prune each other’s generations, and the job says the folder is shared', async () => {
    const otherHealth = await baoApi(other!.api, 'GET', 'sys/health');
    expect(otherHealth.body.cluster_name).toBe(stackName);
    expect(otherHealth.body.cluster_id).not.toBe(stackId);

    const a1 = await runStack();
    expect(a1.code, a1.all).toBe(0);
    const b1 = await runOther();
    expect(b1.code, b1.all).toBe(0);
    const a2 = await runStack();
    expect(a2.code, a2.all).toBe(0);
    const b2 = await runOther();
    expect(b2.code, b2.all).toBe(0);
    const [ka2, kb2] = [String(a2.summary!.key), String(b2.summary!.key)];
    // Each run pruned (keep one) only its own cluster's older snapshot.
    const left = (await t.keys()).filter((k) => k.endsWith('.snap')).sort();
    expect(left).toEqual([ka2, kb2].sort());
    expect(a2.summary).toMatchObject({ pruned: 1, kept: 1 });
    expect(b2.summary).toMatchObject({ pruned: 1, kept: 1 });
    // The objects say whose they are.
    expect((await t.head(ka2)).Metadata).toMatchObject({ 'cluster-id': stackId });
    expect(await t.record(kb2)).toMatchObject({ clusterId: otherHealth.body.cluster_id });
    // Loudly: a warning naming the folder and the other cluster, in the log and in the summary.
    for (const r of [b1, a2, b2]) {
      const warning = r.lines.find((l) => l.level === 'warn' && String(l.msg).includes('share'));
      expect(warning, r.all).toBeDefined();
      expect(r.summary!.sharedWith).toEqual([r === b1 ? stackId : r === a2 ? otherHealth.body.cluster_id : stackId]);
    }

    // The second cluster's root token (given as VAULT_TOKEN) appears in no output.
    for (const r of [b1, b2]) expect(findPlantedSecrets(r.all, { rootToken: other!.rootToken })).toEqual([]);

    // list shows both clusters' snapshots, each with its cluster id.
    const list = await runStack(['list']);
    expect(list.code, list.all).toBe(0);
    const listed = list.summary!.snapshots as Array<{ key: string; clusterId: string }>;
    expect(listed.map((s) => s.key).sort()).toEqual([ka2, kb2].sort());
    expect(listed.map((s) => s.clusterId).sort()).toEqual([stackId, otherHealth.body.cluster_id].sort());
    // verify of the newest takes the one of the cluster it is told about.
    const verifyA = await t.run(['verify'], { SNAPSHOT_CLUSTER: stackName, SNAPSHOT_CLUSTER_ID: stackId });
    expect(verifyA.code, verifyA.all).toBe(0);
    expect(verifyA.summary).toMatchObject({ key: ka2, verified: true });
  }, 300_000);
});
