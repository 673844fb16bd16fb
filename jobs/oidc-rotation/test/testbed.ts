// One isolated OIDC login per test, on the shared local stack: its own Authentik application
// and provider in the stand-in, its own OIDC auth mount in OpenBao configured the way the
// stack's bootstrap configures auth/oidc, and its own service account, Kubernetes-auth role and
// policy (the job's policies/oidc-rotation/policy.hcl with the mount swapped in), so the job
// runs with exactly its production privileges and never touches the shared auth/oidc.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '@vaultkeeper/runtime';
import { VaultClient, VaultError } from '@vaultkeeper/vault';
import { REPO_ROOT } from '../../../test/stack/layout.ts';
import { kubectl, leaderIndex, readStack } from '../../../test/stack/stack.ts';
import { CLI_CALLBACK, oidcRoleBody } from '../../../test/authentik-standin/launch.ts';
import { oidcLoginThroughVault } from '../../../test/authentik-standin/oidc-login.ts';
import { findPlantedSecrets, runJobProcess, type JobRun, type RunJobProcessOptions } from '../../../test/support/run-job.ts';
import { stackVaultClient } from '../../../test/support/vault-client.ts';

const silent = createLogger({ job: 'oidc-rotation-test', level: 'silent' });
export const ROLE = 'default';

export interface Testbed {
  mount: string;
  slug: string;
  providerPk: number;
  clientId: string;
  issuer: string;
  /** runJobProcess identity: service account and Vault role vaultkeeper-<identity>. */
  identity: string;
  recordPath: string;
  /** Environment for runJobProcess. */
  env: Record<string, string>;
}

export interface TestbedOptions {
  /** false: a provider without signing key (ID tokens would be HS256). */
  signingKey?: boolean;
  clientType?: 'confidential' | 'public';
  /** Extra fields for auth/<mount>/config. */
  extraConfig?: Record<string, unknown>;
}

/**
 * A root client that talks to the active node: OpenBao's standbys answer reads themselves
 * (eventual consistency; openbao.org/docs/concepts/consistency), so a read right after a write,
 * or a write to a mount enabled a moment ago, must go where the write went.
 */
export async function rootVault(): Promise<VaultClient> {
  const stack = readStack();
  const c = stackVaultClient({ address: stack.openbao.addr, callDeadlineSeconds: 60 }, silent);
  c.setToken(stack.openbao.rootToken, false);
  await c.findActiveNode();
  return c;
}

/** The active node's address (another engineer's test may have stopped or killed any node). */
export async function activeVaultAddr(): Promise<string> {
  return readStack().openbao.nodes[await leaderIndex()]!.addr;
}

export async function standin<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const stack = readStack();
  if (!stack.authentik) throw new Error('the stack has no Authentik stand-in');
  const res = await fetch(`${stack.authentik.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${stack.authentik.apiToken}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** What Authentik holds now, read fresh through its API. */
export async function authentikSecret(pk: number): Promise<string> {
  const res = await standin<{ client_secret: string }>('GET', `/api/v3/providers/oauth2/${pk}/`);
  if (res.status !== 200) throw new Error(`GET provider ${pk}: ${res.status}`);
  return res.body.client_secret;
}

/** As if an admin regenerated the secret in Authentik's UI. */
export async function rotateInAuthentikUi(pk: number, secret?: string): Promise<string> {
  const res = await standin<{ client_secret: string }>('POST', `/_standin/providers/${pk}/secret`, secret ? { client_secret: secret } : {});
  if (res.status !== 200) throw new Error(`rotate provider ${pk}: ${res.status}`);
  return res.body.client_secret;
}

export async function injectFailure(rule: { method: string; path: string; status: number; times?: number; delayMs?: number; body?: unknown }): Promise<void> {
  const res = await standin('POST', '/_standin/fail', rule);
  if (res.status !== 201) throw new Error(`inject failure: ${res.status}`);
}

/** A clean, isolated login setup; undo it with destroyTestbed. */
export async function createTestbed(opts: TestbedOptions = {}): Promise<Testbed> {
  const stack = readStack();
  const id = randomBytes(4).toString('hex');
  const mount = `oidc-rot-${id}`;
  const slug = `vk-oidc-rot-${id}`;
  const identity = `oidc-rotation-t${id}`;

  const created = await standin<{ provider: { pk: number; client_id: string; client_secret: string } }>('POST', '/_standin/providers', {
    name: `vaultkeeper test ${id}`,
    slug,
    client_type: opts.clientType ?? 'confidential',
    signing_key: opts.signingKey ?? true,
    redirect_uris: [{ matching_mode: 'strict', url: CLI_CALLBACK }],
  });
  if (created.status !== 201) throw new Error(`create provider: ${created.status} ${JSON.stringify(created.body)}`);
  const { pk, client_id: clientId, client_secret: secret } = created.body.provider;
  const issuer = `${stack.authentik!.url}/application/o/${slug}/`;

  const vault = await rootVault();
  try {
    await vault.write(`sys/auth/${mount}`, { type: 'oidc', description: `oidc-rotation test ${id}` });
    // As test/authentik-standin/launch.ts configures auth/oidc.
    await vault.write(`auth/${mount}/config`, {
      oidc_discovery_url: issuer,
      oidc_client_id: clientId,
      oidc_client_secret: secret,
      default_role: ROLE,
      bound_issuer: issuer,
      oidc_response_types: ['code'],
      oidc_response_mode: 'query',
      jwt_supported_algs: ['RS256'],
      ...opts.extraConfig,
    });
    await vault.write(`auth/${mount}/role/${ROLE}`, oidcRoleBody({ clientId, redirectUris: [CLI_CALLBACK], ttl: '5m' }));
    // The job's own policy, for this mount.
    const hcl = readFileSync(join(REPO_ROOT, 'policies/oidc-rotation/policy.hcl'), 'utf8').replaceAll('auth/oidc/', `auth/${mount}/`);
    await vault.write(`sys/policies/acl/vaultkeeper-${identity}`, { policy: hcl });
    const role = JSON.parse(readFileSync(join(REPO_ROOT, 'policies/oidc-rotation/kubernetes-role.json'), 'utf8')) as Record<string, unknown>;
    await vault.write(`auth/kubernetes/role/vaultkeeper-${identity}`, {
      ...role,
      bound_service_account_names: [`vaultkeeper-${identity}`],
      token_policies: [`vaultkeeper-${identity}`],
    });
    await kubectl(['create', 'serviceaccount', '-n', stack.kube.namespace, `vaultkeeper-${identity}`]);
  } catch (err) {
    // Half a testbed would outlive the test on the shared stack.
    await destroyTestbed({ mount, identity, recordPath: `vaultkeeper/oidc-rotation/${mount}` } as Testbed);
    throw err;
  } finally {
    vault.close();
  }

  const nodes = stack.openbao.nodes.map((n) => n.addr);
  return {
    mount,
    slug,
    providerPk: pk,
    clientId,
    issuer,
    identity,
    recordPath: `vaultkeeper/oidc-rotation/${mount}`,
    env: {
      OIDC_ROTATION_MOUNT: mount,
      VAULT_FALLBACK_ADDRS: nodes.slice(1).join(','),
      LOG_LEVEL: 'debug',
    },
  };
}

export async function destroyTestbed(tb: Testbed | undefined): Promise<void> {
  if (!tb) return;
  const stack = readStack();
  const vault = await rootVault();
  const quietly = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch {
      // best effort: the rest must still be cleaned up
    }
  };
  await quietly(() => vault.delete(`sys/auth/${tb.mount}`));
  await quietly(() => vault.delete(`auth/kubernetes/role/vaultkeeper-${tb.identity}`));
  await quietly(() => vault.delete(`sys/policies/acl/vaultkeeper-${tb.identity}`));
  await quietly(() => vault.delete(`secret/metadata/${tb.recordPath}`));
  vault.close();
  await quietly(() => kubectl(['delete', 'serviceaccount', '-n', stack.kube.namespace, `vaultkeeper-${tb.identity}`, '--ignore-not-found']));
}

export interface RecordView {
  version: number;
  data: {
    current: { secret: string; fingerprint: string } | null;
    previous: { secret: string; fingerprint: string } | null;
    pending: { mode: string; secret: string; authentikBefore: { secret: string } | null } | null;
    lock: { holder: string; expiresAt: string } | null;
    externalChanges: string[];
    lastChange: { mode: string } | null;
  };
}

export async function readRecord(tb: Testbed): Promise<RecordView | undefined> {
  const vault = await rootVault();
  try {
    const res = (await vault.read(`secret/data/${tb.recordPath}`)) as { data: RecordView['data']; metadata: { version: number } };
    return { version: res.metadata.version, data: res.data };
  } catch (err) {
    if (err instanceof VaultError && err.status === 404) return undefined;
    throw err;
  } finally {
    vault.close();
  }
}

/**
 * Waits until the record's claim has lapsed as the job judges it: on Vault's clock, the
 * version's created_time plus the claim's leaseSeconds has passed (sys/health's time).
 */
export async function waitForLapse(tb: Testbed, limitMs = 120_000): Promise<void> {
  const end = Date.now() + limitMs;
  for (;;) {
    // A fresh client each time: another test's failover may move the active node, and a
    // standby's lagging copy can answer 404 for a record written a moment ago.
    const vault = await rootVault();
    try {
      const res = (await vault.read(`secret/data/${tb.recordPath}`)) as { data: { lock: { leaseSeconds?: number } | null }; metadata: { created_time: string } };
      if (!res.data.lock) return;
      const lapse = Date.parse(res.metadata.created_time) + (res.data.lock.leaseSeconds ?? 0) * 1000;
      const health = await vault.call('sys/health', { acceptStatus: [429, 472, 473, 501, 503] });
      if ((health.body as { server_time_utc: number }).server_time_utc * 1000 > lapse) return;
    } catch (err) {
      if (!(err instanceof VaultError && err.status === 404)) throw err;
    } finally {
      vault.close();
    }
    if (Date.now() > end) throw new Error('the claim on the rotation record did not lapse');
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function readConfig(tb: Testbed): Promise<Record<string, unknown>> {
  const vault = await rootVault();
  try {
    return (await vault.read(`auth/${tb.mount}/config`)) as Record<string, unknown>;
  } finally {
    vault.close();
  }
}

/** A whole OIDC login through Vault for this testbed; resolves to the error when it fails. */
export async function login(tb: Testbed): Promise<{ ok: true; token: string } | { ok: false; error: Error }> {
  try {
    const res = await oidcLoginThroughVault(await activeVaultAddr(), { mount: tb.mount, role: ROLE });
    return { ok: true, token: res.token };
  } catch (err) {
    return { ok: false, error: err as Error };
  }
}

/**
 * The audit log's requests from here on (only the active node writes it; every request on a
 * standby is forwarded there). Paths are in clear in OpenBao's audit entries.
 */
export function auditCursor(): { requests: () => Array<{ operation: string; path: string }> } {
  const file = readStack().openbao.auditLog;
  const start = statSync(file).size;
  return {
    requests() {
      const end = statSync(file).size;
      const buf = Buffer.alloc(end - start);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, buf, 0, buf.length, start);
      } finally {
        closeSync(fd);
      }
      return buf
        .toString('utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { type: string; request?: { operation?: string; path?: string } })
        .filter((e) => e.type === 'request' && e.request?.path)
        .map((e) => ({ operation: e.request!.operation ?? '', path: e.request!.path! }));
    },
  };
}

/** Runs the job as its own process, logged in as this testbed's service account. */
export function runRotationJob(tb: Testbed, args: string[], opts: Omit<RunJobProcessOptions, 'job' | 'identity' | 'args'> = {}): Promise<JobRun> {
  return runJobProcess({ job: 'oidc-rotation', identity: tb.identity, args, ...opts, env: { ...tb.env, ...opts.env } });
}

/**
 * A gauge of this job as the stack's real Pushgateway holds it now (grouped by job only, as the
 * job pushes), e.g. `pending_change` or `last_run_outcome{outcome="failure"}`; undefined when absent.
 */
export async function pushedGauge(name: string, label?: string): Promise<number | undefined> {
  const text = await (await fetch(`${readStack().pushgateway.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`vaultkeeper_oidc_rotation_${name}{`) && l.includes('job="vaultkeeper_oidc_rotation"') && (!label || l.includes(label)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Which of these secrets (and the Authentik API token) appear anywhere in what the job printed. */
export function leakedSecrets(run: JobRun, secrets: Record<string, string | undefined>): string[] {
  const planted = Object.fromEntries(Object.entries({ ...secrets, apiToken: readStack().authentik!.apiToken }).filter((e): e is [string, string] => !!e[1]));
  return findPlantedSecrets(run.all, planted);
}

/** Whether Authentik accepts client_id:secret (its RFC 7009 revocation endpoint, no side effects). */
export async function authentikAccepts(tb: Testbed, secret: string): Promise<boolean> {
  const res = await fetch(`${readStack().authentik!.url}/application/o/revoke/`, {
    method: 'POST',
    headers: { Authorization: `Basic ${Buffer.from(`${tb.clientId}:${secret}`).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: randomBytes(16).toString('hex') }),
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  return res.status === 200;
}

/**
 * Sends `signal` to the job process itself. runJobProcess starts it through the tsx CLI, which
 * runs the job in a child node process and relays only SIGINT/SIGTERM: a SIGSTOP or SIGKILL sent
 * to tsx would leave the job running. So every descendant gets it, deepest first.
 */
export function signalJob(child: ChildProcess, signal: NodeJS.Signals): void {
  const pids = descendants(child.pid!);
  for (const pid of [...pids.reverse(), child.pid!]) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parentOf) if (parent === pid) (out.push(child), walk(child));
  };
  walk(root);
  return out;
}
