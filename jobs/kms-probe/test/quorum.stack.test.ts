// Quorum lost: two of the three OpenBao nodes stopped (the active one and a standby). Login
// cannot work then (the survivor has no active node to forward it to), so the probe has to say
// what it sees from the endpoints that need no token. One test, one short outage: both nodes are
// started again and the cluster is healthy with an active node and three voters before it ends,
// because other tests share the stack.
import { once } from 'node:events';
import { connect, createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi, waitFor } from '../../../test/stack/http.ts';
import { leaderIndex, nodeHealth, readStack, startNode, stopNode, waitForHealthyCluster, type StackInfo } from '../../../test/stack/stack.ts';
import { runJobProcess } from '../../../test/support/run-job.ts';

let stack: StackInfo;
const stopped: number[] = [];

/**
 * A TCP forwarder in front of one node: what VAULT_ADDR is when it names a Service in front of the
 * pods (the probe cannot tell it from a node's own address by the address alone).
 */
async function forwarderTo(address: string): Promise<{ addr: string; server: Server }> {
  const target = new URL(address);
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream).pipe(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { addr: `${target.protocol}//127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

beforeAll(async () => {
  stack = readStack();
  await waitForHealthyCluster(3);
});

afterAll(async () => {
  for (const i of stopped) await startNode(i);
  await waitForHealthyCluster(3);
  await leaderIndex();
});

describe('quorum lost (two of three nodes stopped, put back afterwards)', () => {
  it('raft says "no quorum" and "no active node" from what the surviving node answers without a token', async () => {
    const leader = await leaderIndex();
    const standbys = stack.openbao.nodes.map((n) => n.index).filter((i) => i !== leader);
    const survivor = standbys[0]!;
    stopped.push(leader, standbys[1]!);
    await Promise.all(stopped.map((i) => stopNode(i)));
    const survivorNode = stack.openbao.nodes[survivor]!;
    // Should the survivor have been the leader after all (leadership moved meanwhile), it steps
    // down once it misses the majority's heartbeats.
    await waitFor(`${survivorNode.id} not active`, 30_000, async () => (await nodeHealth(survivor)) !== 200);
    // What the survivor says without a token, shown for a reader of the test output.
    const [health, seal] = await Promise.all([baoApi(survivorNode.addr, 'GET', 'sys/health?standbyok=true'), baoApi(survivorNode.addr, 'GET', 'sys/seal-status')]);
    process.stdout.write(`\n--- ${survivorNode.id} alone: sys/health ${health.status} ${JSON.stringify(health.body)}\n    sys/seal-status ${seal.status} sealed=${seal.body?.sealed}\n`);

    const probeEnv = { KMS_PROBE_TABLE: 'true', KMS_PROBE_NODE_TIMEOUT: '3s', KMS_PROBE_DEADLINE: '20s' };
    // With no token, the nodes the probe knows are those it is told (KMS_PROBE_NODES, each node's own
    // address, e.g. vault-0.vault-internal), checked by the name of vault.address (the Service).
    const nodesEnv = { KMS_PROBE_NODES: stack.openbao.nodes.map((n) => n.addr).join(',') };
    const r = await runJobProcess({ job: 'kms-probe', env: { ...probeEnv, ...nodesEnv }, timeoutMs: 60_000 });
    process.stdout.write(`${r.stdout.split('\n').filter((l) => !l.startsWith('{')).join('\n')}\n`);
    // The same outage seen through a Service-like VAULT_ADDR (a forwarder to the survivor) with
    // every node's own address as a fallback: the survivor answers twice and is still one voter.
    const forwarder = await forwarderTo(survivorNode.addr);
    let viaService;
    try {
      viaService = await runJobProcess({
        job: 'kms-probe',
        env: { ...probeEnv, VAULT_ADDR: forwarder.addr, VAULT_FALLBACK_ADDRS: stack.openbao.nodes.map((n) => n.addr).join(',') },
        timeoutMs: 60_000,
      });
    } finally {
      await new Promise((res) => forwarder.server.close(res));
    }
    // Back as soon as the probes are done: the outage lasts two probe runs.
    for (const i of stopped.splice(0)) await startNode(i);

    expect(r.code, r.all).toBe(1);
    const checks = (r.summary as { checks: Record<string, { status: string; class?: string; summary: string }> }).checks;
    expect(checks.raft).toMatchObject({ status: 'fail', class: 'no-quorum' });
    expect(checks.raft!.summary).toMatch(/^no quorum: /);
    expect(checks.raft!.summary).toContain('1 of 3 voters answer');
    expect(checks.raft!.summary).toContain('no active node');
    expect(checks.raft!.summary).toContain(`${new URL(survivorNode.addr).host} standby`);
    expect(checks.raft!.summary).not.toMatch(/TimeoutError/);
    expect(checks['vault-nodes']).toMatchObject({ status: 'fail' });
    expect(r.stderr).toBe('');

    expect(viaService.code, viaService.all).toBe(1);
    const raftViaService = (viaService.summary as { checks: Record<string, { status: string; class?: string; summary: string }> }).checks.raft!;
    expect(raftViaService, viaService.stdout).toMatchObject({ status: 'fail', class: 'no-quorum' });
    expect(raftViaService.summary).toContain('1 of 3 voters answer');

    await waitForHealthyCluster(3);
    expect(await waitFor('an active node again', 30_000, async () => (await leaderIndex()) >= 0)).toBe(true);
  });
});
