// secret-sweep beside `kubectl get secrets -A -o json`, same apiserver, same data, same run:
// 20,000 Secrets in 500 namespaces (a realistic mix: leftovers with a third in Vault, TLS pairs,
// service-account tokens, managed ones, `kubectl apply` copies), created here and removed after.
// Wall time and peak RSS of both processes come from GNU time (%e, %M). Goal: the sweep, with
// its classification and Vault comparison, within 1.5x of kubectl's time; peak RSS < 200 MiB.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Secret } from '@kubernetes/client-node';
import { createLimiter } from '../../jobs/secret-sweep/src/concurrency.ts';
import { adminKube, b64, createNamespace, dropNamespace, kvPurge, kvPut } from '../../jobs/secret-sweep/test/fixtures.ts';
import { kubeApi } from '../stack/http.ts';
import { REPO_ROOT } from '../stack/layout.ts';
import { mintServiceAccountToken, readStack, stackEnv } from '../stack/stack.ts';
import type { BenchRow } from './run.ts';

const NAMESPACES = 500;
const PER_NAMESPACE = 40;
const RUNS = 3;
const exec = promisify(execFile);

const rand = (n: number) => randomBytes(n).toString('base64url');

/** 40 Secrets for one namespace, and the Vault KV data that holds a third of the leftovers' values. */
function namespaceData(ns: string): { secrets: V1Secret[]; kv: Record<string, string> } {
  const secrets: V1Secret[] = [];
  const kv: Record<string, string> = {};
  const meta = (name: string, extra: Partial<NonNullable<V1Secret['metadata']>> = {}) => ({ namespace: ns, name, labels: { app: name.split('-')[0]! }, ...extra });
  for (let i = 0; i < 28; i++) {
    const data = { username: `user-${rand(6)}`, password: rand(24), url: `postgres://db-${i}.${ns}.svc:5432/app?sslmode=require` };
    // A third migrated, a third partly migrated, a third not in Vault.
    if (i % 3 === 0) Object.assign(kv, { [`s${i}_user`]: data.username, [`s${i}_password`]: data.password, [`s${i}_url`]: data.url });
    if (i % 3 === 1) kv[`s${i}_password`] = data.password;
    secrets.push({ metadata: meta(`app${i}-db`), type: 'Opaque', data: { username: b64(data.username), password: b64(data.password), url: b64(data.url) } });
  }
  for (let i = 0; i < 4; i++) {
    const pair = { 'tls.crt': b64(rand(1200)), 'tls.key': b64(rand(1300)) };
    secrets.push({ metadata: meta(`web${i}-tls`, i < 2 ? { annotations: { 'cert-manager.io/certificate-name': `web${i}` } } : {}), type: 'kubernetes.io/tls', data: pair });
  }
  for (let i = 0; i < 2; i++) {
    secrets.push({
      metadata: meta(`sa${i}-token`, { annotations: { 'kubernetes.io/service-account.name': 'default' } }),
      type: 'kubernetes.io/service-account-token',
      data: { token: b64(rand(600)), 'ca.crt': b64(rand(800)), namespace: b64(ns) },
    });
  }
  for (let i = 0; i < 2; i++) {
    const stringData = { apiKey: rand(32), region: 'eu-west-1' };
    const applied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: `applied${i}`, namespace: ns }, stringData });
    secrets.push({ metadata: meta(`applied${i}-creds`, { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': applied } }), type: 'Opaque', data: { apiKey: b64(stringData.apiKey), region: b64(stringData.region) } });
  }
  for (let i = 0; i < 4; i++) {
    secrets.push({ metadata: meta(`synced${i}-secret`, { labels: { 'reconcile.external-secrets.io/managed': 'true' } }), type: 'Opaque', data: { value: b64(rand(40)) } });
  }
  return { secrets, kv };
}

/** Runs a command under GNU time: wall seconds and peak RSS (KiB) of the command itself. */
async function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; rssMiB: number; code: number | null }> {
  const out = join(mkdtempSync(join(tmpdir(), 'vk-bench-')), 'time');
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-o', out, '-f', '%e %M', cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Drained, not kept: both print a lot and neither should wait on a full pipe.
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', resolve);
  });
  const [secs, kib] = readFileSync(out, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { ms: secs! * 1000, rssMiB: kib! / 1024, code };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Creates the data set. Secrets go through one keep-alive HTTPS connection pool (the stack's
 * kubeApi) rather than @kubernetes/client-node, which opens a new TLS connection per request:
 * 20,000 handshakes would make the setup, not the sweep, the slow part.
 */
export async function populate(prefix: string): Promise<{ namespaces: string[]; kvBase: string }> {
  const stack = readStack();
  const { core } = adminKube();
  const target = { server: stack.kube.server, ca: readFileSync(stack.kube.caFile, 'utf8'), token: stack.kube.adminToken };
  const kvBase = `${prefix}/`;
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  const limit = createLimiter(32);
  await Promise.all(namespaces.map((ns) => limit(() => createNamespace(core, ns))));
  // Vault holds the migrated values in 100 KV secrets (one per 5 namespaces).
  const kvGroups = new Map<string, Record<string, string>>();
  const create = createLimiter(48);
  const pending: Array<Promise<void>> = [];
  for (const [i, ns] of namespaces.entries()) {
    const { secrets, kv } = namespaceData(ns);
    for (const secret of secrets) {
      pending.push(
        create(async () => {
          const res = await kubeApi(target, 'POST', `/api/v1/namespaces/${ns}/secrets`, secret);
          if (res.status !== 201) throw new Error(`create secret in ${ns}: ${res.status}`);
        }),
      );
    }
    const group = `team-${Math.floor(i / 5)}`;
    const g = kvGroups.get(group) ?? {};
    for (const [k, v] of Object.entries(kv)) g[`${ns}_${k}`] = v;
    kvGroups.set(group, g);
  }
  await Promise.all(pending);
  await Promise.all([...kvGroups].map(([group, data]) => limit(() => kvPut(`${kvBase}${group}`, data))));
  return { namespaces, kvBase };
}

export async function depopulate(prefix: string): Promise<void> {
  const { core } = adminKube();
  const limit = createLimiter(32);
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `${prefix}-${String(i).padStart(3, '0')}`);
  await Promise.all(namespaces.map((ns) => limit(() => dropNamespace(core, ns).catch(() => undefined))));
  await kvPurge(`${prefix}/`).catch(() => undefined);
}

export async function run(): Promise<BenchRow[]> {
  const stack = readStack();
  const { core } = adminKube();
  const prefix = `bench-sweep-${randomBytes(3).toString('hex')}`;
  const bundle = join(REPO_ROOT, 'jobs/secret-sweep/dist/secret-sweep.mjs');
  if (!existsSync(bundle)) {
    await exec(process.execPath, [join(REPO_ROOT, 'packages/runtime/bin/bundle.mjs'), 'src/main.ts', 'dist/secret-sweep.mjs'], { cwd: join(REPO_ROOT, 'jobs/secret-sweep') });
  }
  const setupStart = performance.now();
  try {
    const { kvBase } = await populate(prefix);
    const setupSeconds = (performance.now() - setupStart) / 1000;
    const dir = mkdtempSync(join(tmpdir(), 'vk-bench-sweep-'));
    const tokenPath = join(dir, 'token');
    writeFileSync(tokenPath, await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-secret-sweep', { audience: 'vault', expirationSeconds: 3600 }), { mode: 0o600 });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...stackEnv(stack),
      VAULT_AUTH_ROLE: 'vaultkeeper-secret-sweep',
      VAULT_AUTH_TOKEN_PATH: tokenPath,
      VAULT_FALLBACK_ADDRS: stack.openbao.nodes.slice(1).map((n) => n.addr).join(','),
      SWEEP_KV_SOURCES: `secret:${kvBase}`,
      LOG_LEVEL: 'warn',
    };

    const kubectlRuns: Array<{ ms: number; rssMiB: number }> = [];
    const sweepRuns: Array<{ ms: number; rssMiB: number }> = [];
    for (let i = 0; i < RUNS; i++) {
      // Alternate, so a noisy neighbour on the shared stack hits both alike.
      const k = await measure('kubectl', ['--kubeconfig', stack.kube.kubeconfig, 'get', 'secrets', '-A', '-o', 'json'], env);
      if (k.code !== 0) throw new Error(`kubectl exited ${k.code}`);
      kubectlRuns.push(k);
      // --dry-run: the same work, without pushing 500 namespaces of bench metrics to the shared Pushgateway.
      const s = await measure(process.execPath, [bundle, '--dry-run', '--format', 'table'], env);
      if (s.code !== 0) throw new Error(`secret-sweep exited ${s.code}`);
      sweepRuns.push(s);
    }
    const km = median(kubectlRuns.map((r) => r.ms));
    const sm = median(sweepRuns.map((r) => r.ms));
    const total = (await core.listSecretForAllNamespaces({ limit: 1 })).metadata?.remainingItemCount;
    const note = `${NAMESPACES * PER_NAMESPACE} bench Secrets in ${NAMESPACES} namespaces (+${(total ?? 0) + 1 - NAMESPACES * PER_NAMESPACE} others on the stack); median of ${RUNS}`;
    return [
      { name: 'setup: create namespaces, Secrets, KV', value: setupSeconds, unit: 's', note: 'not part of the comparison' },
      { name: 'wall time: sweep (list, classify, compare with Vault, report)', value: sm, unit: 'ms', baseline: km, baselineName: 'kubectl get secrets -A -o json', note: `${note}; goal ≤ 1.5x` },
      { name: 'peak RSS: sweep', value: median(sweepRuns.map((r) => r.rssMiB)), unit: 'MiB', baseline: median(kubectlRuns.map((r) => r.rssMiB)), baselineName: 'kubectl', note: 'goal < 200 MiB' },
      { name: 'runs (sweep ms / kubectl ms)', value: Number.NaN, unit: '', note: sweepRuns.map((r, i) => `${r.ms.toFixed(0)}/${kubectlRuns[i]!.ms.toFixed(0)}`).join(', ') },
    ];
  } finally {
    await depopulate(prefix);
  }
}
