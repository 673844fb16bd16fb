// The foundation against the real stack: Kubernetes auth with apiserver-minted tokens, per-job
// least-privilege policies, surviving a Raft leader change, revoking the login token at exit and
// on SIGTERM, config errors, and no token in anything a job prints.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '@vaultkeeper/runtime';
import { VaultClient, VaultError, clusterIdentity } from '@vaultkeeper/vault';
import { REPO_ROOT } from '../stack/layout.ts';
import { killLeader, leaderIndex, mintServiceAccountToken, readStack, startNode, waitForHealthyCluster } from '../stack/stack.ts';
import { findPlantedSecrets, runJobProcess } from '../support/run-job.ts';
import { stackVaultClient } from '../support/vault-client.ts';

const entry = resolve(REPO_ROOT, 'test/e2e/fixtures/vault-smoke-job.ts');
const smoke = (o: Parameters<typeof runJobProcess>[0] extends infer T ? Partial<T> : never = {}) =>
  runJobProcess({ job: 'vault-smoke', entry, identity: 'kms-probe', ...o });

const silent = createLogger({ job: 'test', level: 'silent' });

function rootClient(node?: string): VaultClient {
  const stack = readStack();
  const c = stackVaultClient({ address: node ?? stack.openbao.addr, callDeadlineSeconds: 60 }, silent);
  c.setToken(stack.openbao.rootToken, false);
  return c;
}

async function accessorIsLive(accessor: string): Promise<boolean> {
  const root = rootClient();
  try {
    await root.write('auth/token/lookup-accessor', { accessor });
    return true;
  } catch (err) {
    if (err instanceof VaultError && (err.status === 400 || err.status === 403)) return false;
    throw err;
  } finally {
    root.close();
  }
}

function loginAccessor(run: { lines: Array<Record<string, unknown>> }): string {
  const line = run.lines.find((l) => l.msg === 'logged in to Vault');
  expect(line, 'the job logs its login (accessor only)').toBeDefined();
  return line!.accessor as string;
}

describe('Kubernetes auth and least privilege', () => {
  it('logs in with a service-account token minted by the apiserver and gets only its own policy', async () => {
    const run = await smoke();
    expect(run.code, run.all).toBe(0);
    expect(run.summary?.policies).toEqual(['default', 'vaultkeeper-kms-probe']);
  });

  it("allows what the job's policy grants and denies a path outside it", async () => {
    const stack = readStack();
    const jwt = await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-kms-probe', { audience: 'vault' });
    const c = stackVaultClient({ address: stack.openbao.addr, callDeadlineSeconds: 20 }, silent);
    try {
      await c.loginKubernetes('vaultkeeper-kms-probe', jwt, 'kubernetes');
      await expect(c.readRaw('sys/storage/raft/autopilot/state')).resolves.toBeDefined();
      const denied = await c.read('secret/data/vaultkeeper/not-mine').catch((e: unknown) => e);
      expect(denied).toBeInstanceOf(VaultError);
      expect((denied as VaultError).status).toBe(403);
      expect((denied as VaultError).path).toBe('secret/data/vaultkeeper/not-mine');
      expect((denied as Error).message).not.toContain(c.token!);
      await c.revokeOwnToken();
    } finally {
      c.close();
    }
  });

  it('refuses a service-account token for another role', async () => {
    const run = await smoke({ env: { VAULT_AUTH_ROLE: 'vaultkeeper-raft-snapshot' } });
    expect(run.code).toBe(1);
    expect(run.summary?.error).toMatchObject({ type: 'VaultError', status: 403 });
  });
});

describe('token lifecycle', () => {
  it('revokes its login token when the job ends', async () => {
    const run = await smoke();
    expect(run.code).toBe(0);
    expect(await accessorIsLive(loginAccessor(run))).toBe(false);
  });

  it('revokes its login token when the job fails', async () => {
    const run = await smoke({ args: ['--read-path', 'secret/data/vaultkeeper/not-mine'] });
    expect(run.code).toBe(1);
    expect(await accessorIsLive(loginAccessor(run))).toBe(false);
  });

  it('on SIGTERM aborts, revokes its token and exits 1 inside the grace period', async () => {
    let signalledAt = 0;
    const run = await smoke({
      env: { SMOKE_HOLD: '120s', VAULTKEEPER_SHUTDOWN_GRACE: '10s' },
      onLine: (line, child) => {
        if (line.includes('"holding"') && !signalledAt) {
          signalledAt = Date.now();
          child.kill('SIGTERM');
        }
      },
    });
    expect(signalledAt).toBeGreaterThan(0);
    expect(run.code).toBe(1);
    expect(Date.now() - signalledAt).toBeLessThan(10_000);
    expect(run.summary?.error).toMatchObject({ message: 'stopped by SIGTERM' });
    expect(await accessorIsLive(loginAccessor(run))).toBe(false);
  });
});

describe('a Raft leader change', () => {
  afterAll(async () => {
    for (let i = 0; i < 3; i++) await startNode(i).catch(() => undefined);
    await waitForHealthyCluster();
  });

  /** 30 reads by the smoke job, the leader SIGKILLed after the third; what it read, and from where. */
  async function readsWhileLeaderDies(env: Record<string, string>): Promise<{ leader: number; nodesUsed: Set<unknown> }> {
    const leader = await leaderIndex();
    let killed: number | undefined;
    const run = await smoke({
      env: { ...env, SMOKE_READS: '30', SMOKE_INTERVAL_MS: '200' },
      onLine: (line) => {
        if (killed === undefined && line.includes('"read":3,')) {
          killed = -1;
          void killLeader().then((i) => (killed = i));
        }
      },
      timeoutMs: 110_000,
    });
    expect(killed).toBe(leader);
    expect(run.code, run.all).toBe(0);
    expect(run.summary?.reads).toBe(30);
    return { leader, nodesUsed: new Set(run.lines.filter((l) => l.msg === 'read ok').map((l) => l.node)) };
  }

  it('keeps working when the leader is killed mid-run', async () => {
    const stack = readStack();
    const leader = await leaderIndex();
    const others = stack.openbao.nodes.filter((_, i) => i !== leader).map((n) => n.addr);
    // Pointed at the leader itself, with the other nodes as fallbacks: the worst case. The nodes'
    // certificate names the Service, not their own addresses: VAULT_TLS_SERVER_NAME says so.
    const { nodesUsed } = await readsWhileLeaderDies({
      VAULT_ADDR: stack.openbao.nodes[leader]!.addr,
      VAULT_FALLBACK_ADDRS: others.join(','),
      ...(stack.openbao.tls ? { VAULT_TLS_SERVER_NAME: stack.openbao.tls.serverName } : {}),
    });
    expect(nodesUsed.size).toBeGreaterThan(1);
  });

  it('keeps working through the Service when the leader is killed mid-run (the vault-helm shape)', async () => {
    for (let i = 0; i < 3; i++) await startNode(i).catch(() => undefined); // the test before killed one
    await waitForHealthyCluster();
    // stackEnv's VAULT_ADDR: the `vault` Service, no fallbacks; the client pins the active node's
    // advertised address (verified by the Service's name) and falls back to the Service.
    const { leader, nodesUsed } = await readsWhileLeaderDies({});
    expect(nodesUsed.has(readStack().openbao.nodes[leader]!.addr), 'the active node was pinned first').toBe(true);
    expect(nodesUsed.size).toBeGreaterThan(1);
  });
});

describe('bad config', () => {
  const cases: Array<[string, Record<string, string | undefined>, string]> = [
    ['a missing Vault address', { VAULT_ADDR: undefined }, 'vault.address'],
    ['a malformed URL', { VAULT_ADDR: 'not a url' }, 'vault.address'],
    ['a wrong type', { VAULT_REQUEST_TIMEOUT: 'soon' }, 'vault.requestTimeoutSeconds'],
    ['an unknown VAULTKEEPER_ variable', { VAULTKEEPER_LOGLEVEL: 'debug' }, 'VAULTKEEPER_LOGLEVEL'],
  ];
  for (const [what, env, fieldName] of cases) {
    it(`exits 2 and names the field for ${what}`, async () => {
      const run = await smoke({ env, auth: 'none' });
      expect(run.code).toBe(2);
      const line = run.lines.at(-1)!;
      expect(line.msg).toBe('invalid configuration');
      expect((line.issues as Array<{ field: string }>).map((i) => i.field)).toContain(fieldName);
    });
  }

  it('exits 2 and names an unknown key in the config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vk-cfg-'));
    writeFileSync(join(dir, 'c.yaml'), 'vault:\n  adress: https://vault.example:8200\n');
    const run = await smoke({ args: ['--config', join(dir, 'c.yaml')], env: { VAULT_ADDR: undefined }, auth: 'none' });
    expect(run.code).toBe(2);
    expect(run.lines.at(-1)!.issues).toContainEqual({ field: 'vault.adress', reason: 'unknown key' });
  });

  it('exits 2 on an unknown option, and --help exits 0', async () => {
    expect((await smoke({ args: ['--dry-rnu'], auth: 'none' })).code).toBe(2);
    const help = await smoke({ args: ['--help'], auth: 'none' });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('VAULT_ADDR');
  });

  it('refuses plain http to a non-loopback address', async () => {
    const run = await smoke({ env: { VAULT_ADDR: 'http://vault.example.com:8200' }, auth: 'none' });
    expect(run.code).toBe(1);
    expect(run.all).toContain('refusing plain http://');
  });
});

describe('secrets stay where they belong', () => {
  it('never prints the Vault token or the service-account JWT, on success or failure', async () => {
    const root = rootClient();
    const res = (await root.call('auth/token/create', { method: 'POST', body: { policies: ['vaultkeeper-kms-probe'], ttl: '5m' } })).body as {
      auth: { client_token: string };
    };
    root.close();
    const planted = res.auth.client_token;
    const jwt = await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-kms-probe', { audience: 'vault' });
    const dir = mkdtempSync(join(tmpdir(), 'vk-jwt-'));
    writeFileSync(join(dir, 'token'), jwt);

    const runs = [
      await smoke({ auth: 'none', env: { VAULT_TOKEN: planted, LOG_LEVEL: 'trace' } }),
      await smoke({ auth: 'none', env: { VAULT_TOKEN: planted, LOG_LEVEL: 'trace' }, args: ['--read-path', 'secret/data/nope'] }),
      await smoke({ auth: 'none', env: { VAULT_AUTH_ROLE: 'vaultkeeper-kms-probe', VAULT_AUTH_TOKEN_PATH: join(dir, 'token'), LOG_LEVEL: 'trace' } }),
      await smoke({ auth: 'none', env: { VAULT_AUTH_ROLE: 'vaultkeeper-raft-snapshot', VAULT_AUTH_TOKEN_PATH: join(dir, 'token'), LOG_LEVEL: 'trace' } }),
      await smoke({ auth: 'none', env: { VAULT_TOKEN: planted, VAULT_ADDR: 'not a url' } }),
    ];
    expect(runs.map((r) => r.code)).toEqual([0, 1, 0, 1, 2]);
    for (const run of runs) expect(findPlantedSecrets(run.all, { vaultToken: planted, serviceAccountJwt: jwt })).toEqual([]);
  });
});

describe('cluster identity', () => {
  it('every node, active or standby, reports the same cluster_id and cluster_name without a token', async () => {
    const ids = await Promise.all(
      readStack().openbao.nodes.map(async (n) => {
        const c = rootClient(n.addr);
        c.setToken('', false);
        try {
          return await clusterIdentity(c);
        } finally {
          c.close();
        }
      }),
    );
    expect(ids[0]!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[0]!.name).toBeTruthy();
    for (const id of ids) expect({ id: id.id, name: id.name }).toEqual({ id: ids[0]!.id, name: ids[0]!.name });
  });
});
