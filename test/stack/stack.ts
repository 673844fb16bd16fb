// What tests import: where the running local stack is (readStack) and how to poke at it.
// `pnpm stack:up` writes $VAULTKEEPER_STACK_DIR/stack.json (default /tmp/vaultkeeper-stack).
//
// OpenBao node indices are 0-based everywhere here: node i is StackInfo.openbao.nodes[i],
// node id `bao-${i + 1}`, API port 18201 + i.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { baoApi, kubeApi, waitFor } from './http.ts';
import { paths } from './layout.ts';
import { addonProblems } from './addons.ts';
import { s3Env } from './s3-target.ts';
import { isRunning, readRecord, startDetached, stopProcesses } from './proc.ts';

export interface BaoNode {
  index: number;
  id: string; // raft node_id, bao-1..bao-3
  addr: string; // https://127.0.0.1x:1820x (api_addr: the node's own address, which its certificate does not cover)
  clusterAddr: string; // https://127.0.0.1x:1821x
  configFile: string;
  dataDir: string;
  logFile: string;
}

export interface StackInfo {
  stateDir: string;
  createdAt: string;
  upSeconds: number;
  openbao: {
    binary: string; // the real bao binary (not the Python wrapper)
    addr: string; // the active-only Service (same as activeAddr): where tests send admin calls
    /** vault-helm's `vault` Service: every unsealed node, round robin (test/stack/forwarder.ts). */
    serviceAddr: string;
    /** vault-helm's `vault-active` Service: the active node only. */
    activeAddr: string;
    /** null: the stack runs without TLS (VAULTKEEPER_STACK_TLS=0). */
    tls: { caFile: string; serverName: string } | null;
    nodes: BaoNode[];
    rootToken: string;
    rootTokenFile: string; // 0600
    recoveryKey: string; // base64, 1 share / threshold 1 (auto-unseal gives recovery keys)
    recoveryKeyFile: string; // 0600
    auditLog: string; // file audit device, declared in the node configs; only the active node writes
  };
  aws: {
    endpoint: string; // moto: S3 + KMS
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
    unsealKey: { keyId: string; arn: string; alias: string };
    dataKey: { keyId: string; arn: string; alias: string };
    buckets: { snapshots: string; breakglass: string }; // breakglass has versioning on
  };
  kube: {
    server: string; // https://127.0.0.1:16443
    caFile: string;
    kubeconfig: string; // admin (system:masters) kubeconfig
    adminToken: string;
    issuer: string;
    apiAudiences: string[];
    namespace: string; // vaultkeeper
    serviceAccounts: Record<string, string>; // job name -> service account name
    reviewer: { namespace: string; serviceAccount: string; token: string; expiresAt: string };
  };
  etcd: { endpoint: string };
  pushgateway: { url: string };
  /** null when test/authentik-standin/launch.ts did not exist at `stack:up` time. */
  authentik: { url: string; apiToken: string } | null;
  /**
   * Add-ons (test/stack/addons.ts): started after the core stack, and by `stack:up` on a healthy
   * stack that lacks them. null (or absent in an older stack.json): not running.
   */
  versitygw?: {
    endpoint: string; // S3 only; KMS stays on moto
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
    buckets: { snapshots: string; breakglass: string }; // both versioned (posix backend)
  } | null;
  prometheus?: { url: string; rulesFiles: string[] } | null;
}

export const NOT_UP = 'stack is not up: run pnpm stack:up';

export function readStack(): StackInfo {
  if (!existsSync(paths.stackJson)) throw new Error(`${NOT_UP} (no ${paths.stackJson})`);
  return JSON.parse(readFileSync(paths.stackJson, 'utf8')) as StackInfo;
}

/** The environment a vaultkeeper job needs to run against the stack (no Vault token). */
export function stackEnv(stack = readStack()): Record<string, string> {
  return {
    // The Service in front of every unsealed node, as a CronJob in the cluster would use it.
    VAULT_ADDR: stack.openbao.serviceAddr,
    ...(stack.openbao.tls ? { VAULT_CACERT: stack.openbao.tls.caFile } : {}),
    AWS_ENDPOINT_URL: stack.aws.endpoint,
    ...s3Env(stack),
    AWS_ACCESS_KEY_ID: stack.aws.accessKeyId,
    AWS_SECRET_ACCESS_KEY: stack.aws.secretAccessKey,
    AWS_REGION: stack.aws.region,
    AWS_DEFAULT_REGION: stack.aws.region,
    PUSHGATEWAY_URL: stack.pushgateway.url,
    KUBECONFIG: stack.kube.kubeconfig,
  };
}

// ---- OpenBao nodes -------------------------------------------------------------------

export function nodeProcessName(i: number): string {
  return `bao-${i + 1}`;
}

function node(i: number, stack: StackInfo): BaoNode {
  const n = stack.openbao.nodes[i];
  if (!n) throw new Error(`no OpenBao node ${i} (0-based; there are ${stack.openbao.nodes.length})`);
  return n;
}

/** sys/health status of one node: 200 active, 429 standby, 503 sealed, 501 uninitialised, 0 unreachable. */
export async function nodeHealth(i: number, stack = readStack()): Promise<number> {
  try {
    return (await baoApi(node(i, stack).addr, 'GET', 'sys/health', { timeoutMs: 2_000 })).status;
  } catch {
    return 0;
  }
}

/** Starts node i again with its original config; resolves once it is unsealed (active or standby). */
export async function startNode(i: number, timeoutMs = 60_000): Promise<void> {
  const stack = readStack();
  const n = node(i, stack);
  const rec = readRecord(nodeProcessName(i));
  if (rec && isRunning(rec)) return;
  startDetached(nodeProcessName(i), stack.openbao.binary, ['server', `-config=${n.configFile}`]);
  await waitFor(`${n.id} to be unsealed`, timeoutMs, async () => [200, 429].includes(await nodeHealth(i, stack)));
}

/** Stops node i gracefully (SIGTERM, SIGKILL after 10 s). */
export async function stopNode(i: number): Promise<void> {
  node(i, readStack());
  const rec = readRecord(nodeProcessName(i));
  if (rec) await stopProcesses([rec]);
}

/** Index of the active node, waiting (up to timeoutMs) while an election is in progress. */
export async function leaderIndex(timeoutMs = 30_000): Promise<number> {
  const stack = readStack();
  return waitFor('an active OpenBao node', timeoutMs, async () => {
    const codes = await Promise.all(stack.openbao.nodes.map((n) => nodeHealth(n.index, stack)));
    const active = codes.flatMap((code, i) => (code === 200 ? [i] : []));
    return active.length === 1 ? active[0] : undefined;
  });
}

/** SIGKILLs the active node and returns its index (bring it back with startNode). */
export async function killLeader(): Promise<number> {
  const i = await leaderIndex();
  const rec = readRecord(nodeProcessName(i));
  if (!rec) throw new Error(`no pid recorded for ${nodeProcessName(i)}`);
  await stopProcesses([rec], 0, 'SIGKILL');
  return i;
}

/** Waits until autopilot reports a healthy cluster with `voters` voters (3 when all nodes are up). */
export async function waitForHealthyCluster(voters = 3, timeoutMs = 90_000): Promise<void> {
  const stack = readStack();
  await waitFor(`a healthy ${voters}-voter Raft cluster`, timeoutMs, async () => {
    const i = await leaderIndex(5_000);
    const res = await baoApi(node(i, stack).addr, 'GET', 'sys/storage/raft/autopilot/state', { token: stack.openbao.rootToken });
    const state = res.body?.data;
    if (res.status !== 200 || !state) throw new Error(`autopilot state: ${res.status} ${JSON.stringify(res.body)}`);
    if (!state.healthy || (state.voters ?? []).length !== voters) {
      throw new Error(`autopilot: healthy=${state.healthy}, voters=${JSON.stringify(state.voters)}`);
    }
    return true;
  });
}

// ---- Kubernetes ----------------------------------------------------------------------

/** A service account token from the apiserver's TokenRequest API (audience defaults to all of the apiserver's). */
export async function mintServiceAccountToken(
  namespace: string,
  serviceAccount: string,
  opts: { audience?: string | string[]; expirationSeconds?: number } = {},
): Promise<string> {
  const stack = readStack();
  const audiences = opts.audience === undefined ? undefined : [opts.audience].flat();
  const res = await kubeApi(
    { server: stack.kube.server, ca: readFileSync(stack.kube.caFile, 'utf8'), token: stack.kube.adminToken },
    'POST',
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(serviceAccount)}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { ...(audiences ? { audiences } : {}), expirationSeconds: opts.expirationSeconds ?? 600 },
    },
  );
  if (res.status !== 201 || !res.body?.status?.token) {
    throw new Error(`TokenRequest for ${namespace}/${serviceAccount} -> ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body.status.token as string;
}

/** Runs kubectl with the admin kubeconfig; resolves to stdout, rejects with stderr. */
export function kubectl(args: string[], opts: { input?: string } = {}): Promise<string> {
  const stack = readStack();
  return new Promise((resolve, reject) => {
    const child = execFile('kubectl', ['--kubeconfig', stack.kube.kubeconfig, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    child.stdin?.end(opts.input ?? '');
  });
}

// ---- Health --------------------------------------------------------------------------

/**
 * What is wrong with the running stack; empty when every recorded process is alive and answering.
 * `coreOnly`: leave the add-ons out (stack:up restarts the core for its problems, an add-on alone).
 */
export async function stackProblems(stack = readStack(), opts: { coreOnly?: boolean } = {}): Promise<string[]> {
  const problems: string[] = [];
  const names = ['moto', 'etcd', 'kube-apiserver', 'pushgateway', 'bao-services', ...stack.openbao.nodes.map((n) => nodeProcessName(n.index))];
  if (stack.authentik) names.push('authentik-standin');
  for (const name of names) {
    const rec = readRecord(name);
    if (!rec || !isRunning(rec)) problems.push(`${name} is not running`);
  }
  const probe = async (what: string, fn: () => Promise<boolean>) => {
    try {
      if (!(await fn())) problems.push(`${what} is not healthy`);
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  const ok = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(3_000) })).ok;
  await Promise.all([
    ...stack.openbao.nodes.map((n) => probe(n.id, async () => [200, 429].includes(await nodeHealth(n.index, stack)))),
    probe('the vault Service', async () => [200, 429].includes((await baoApi(stack.openbao.serviceAddr, 'GET', 'sys/health', { timeoutMs: 2_000 })).status)),
    probe('moto', async () => (await fetch(stack.aws.endpoint, { signal: AbortSignal.timeout(3_000) })).status < 500),
    probe('etcd', () => ok(`${stack.etcd.endpoint}/health`)),
    probe('pushgateway', () => ok(`${stack.pushgateway.url}/-/ready`)),
    probe('kube-apiserver', async () => {
      const target = { server: stack.kube.server, ca: readFileSync(stack.kube.caFile, 'utf8'), token: stack.kube.adminToken };
      return (await kubeApi(target, 'GET', '/readyz')).status === 200;
    }),
  ]);
  if (!opts.coreOnly) problems.push(...(await addonProblems(stack)));
  return problems;
}
