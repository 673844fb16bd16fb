// kms-probe: what one probe run costs on the healthy stack (wall time, peak RSS, each check's
// latency) beside what an operator runs by hand for the Vault half of it (`bao status` on every
// node plus `bao operator raft autopilot state`), and how long a run lasts when every endpoint
// accepts and never answers, beside the bound it promises (deadline + metrics push timeout).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/layout.ts';
import { mintServiceAccountToken, readStack, stackEnv } from '../stack/stack.ts';
import type { BenchRow } from './run.ts';

const RUNS = 5;
const BUNDLE = join(REPO_ROOT, 'jobs', 'kms-probe', 'dist', 'kms-probe.mjs');
// Prints the process's peak RSS (KiB) on stderr as it exits.
const RSS_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('maxrss='+process.resourceUsage().maxRSS+'\\n'))`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface ProbeRun {
  ms: number;
  rssMiB: number;
  code: number | null;
  checks: Record<string, { status: string; latencyMs: number }>;
}

function runProbe(env: NodeJS.ProcessEnv, args: string[] = []): Promise<ProbeRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', RSS_HOOK, BUNDLE, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      const finished = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg?: string; summary?: { checks?: ProbeRun['checks'] } })
        .findLast((l) => l.msg === 'finished');
      const rss = Number(/maxrss=(\d+)/.exec(err)?.[1] ?? Number.NaN) / 1024;
      resolve({ ms, rssMiB: rss, code, checks: finished?.summary?.checks ?? {} });
    });
  });
}

function timeProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(performance.now() - t0));
  });
}

export async function run(): Promise<BenchRow[]> {
  if (!existsSync(BUNDLE)) throw new Error('jobs/kms-probe/dist/kms-probe.mjs missing: run pnpm build');
  const stack = readStack();
  const dir = mkdtempSync(join(tmpdir(), 'kms-probe-bench-'));
  const tokenPath = join(dir, 'token');
  writeFileSync(tokenPath, await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-kms-probe', { audience: 'vault', expirationSeconds: 600 }), { mode: 0o600 });
  const base: NodeJS.ProcessEnv = { ...process.env, ...stackEnv(stack), KMS_PROBE_TABLE: 'false', LOG_LEVEL: 'info' };
  delete base.VAULT_TOKEN;
  const probeEnv = { ...base, VAULT_AUTH_ROLE: 'vaultkeeper-kms-probe', VAULT_AUTH_TOKEN_PATH: tokenPath };

  // The operator's hand check of the Vault half: one CLI process per node, then autopilot.
  const byHand: number[] = [];
  const cliEnv = { ...process.env, VAULT_TOKEN: stack.openbao.rootToken, BAO_TOKEN: stack.openbao.rootToken };
  for (let i = 0; i < RUNS; i++) {
    let total = 0;
    for (const n of stack.openbao.nodes) total += await timeProcess(stack.openbao.binary, ['status', `-address=${n.addr}`], cliEnv);
    total += await timeProcess(stack.openbao.binary, ['operator', 'raft', 'autopilot', 'state', `-address=${stack.openbao.addr}`], cliEnv);
    byHand.push(total);
  }
  const bareRss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    bareRss.push(
      await new Promise<number>((resolve) => {
        let err = '';
        const child = spawn(process.execPath, ['--import', RSS_HOOK, '-e', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
        child.stderr.on('data', (c: Buffer) => (err += c));
        child.on('close', () => resolve(Number(/maxrss=(\d+)/.exec(err)?.[1]) / 1024));
      }),
    );
  }

  const runs: ProbeRun[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await runProbe(probeEnv, ['--dry-run']));
  const healthy = runs.filter((r) => r.code === 0);
  const rows: BenchRow[] = [
    {
      name: 'healthy run, wall time (bundle, login to revoke)',
      value: median(runs.map((r) => r.ms)),
      unit: 'ms',
      baseline: median(byHand),
      baselineName: 'bao status x3 + autopilot state',
      note: `median of ${RUNS}; ${healthy.length}/${RUNS} exit 0; the probe also checks KMS twice`,
    },
    { name: 'healthy run, peak RSS', value: median(runs.map((r) => r.rssMiB)), unit: 'MiB', baseline: median(bareRss), baselineName: 'node -e 0' },
  ];
  for (const check of ['kms-key', 'kms-roundtrip', 'vault-nodes', 'raft']) {
    const xs = runs.map((r) => r.checks[check]?.latencyMs).filter((x): x is number => typeof x === 'number');
    rows.push({ name: `check ${check}, latency`, value: xs.length ? median(xs) : Number.NaN, unit: 'ms', note: `median of ${xs.length}` });
  }

  // Every endpoint accepts and never answers; the promise is deadline + push timeout + start-up.
  const sockets: net.Socket[] = [];
  const hang = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  const at = `http://127.0.0.1:${(hang.address() as net.AddressInfo).port}`;
  const config = join(dir, 'config.yaml');
  writeFileSync(config, 'metrics:\n  pushTimeoutSeconds: 2\n');
  const deadline = 5;
  const hung = await runProbe({
    ...probeEnv,
    VAULT_ADDR: at,
    KMS_PROBE_NODES: at,
    AWS_KMS_ENDPOINT: at,
    PUSHGATEWAY_URL: at,
    KMS_PROBE_DEADLINE: `${deadline}s`,
    VAULTKEEPER_CONFIG: config,
  });
  for (const s of sockets) s.destroy();
  hang.close();
  rmSync(dir, { recursive: true, force: true });
  rows.push({
    name: 'every endpoint hangs, wall time',
    value: hung.ms / 1000,
    unit: 's',
    baseline: deadline + 2,
    baselineName: 'deadline + push timeout',
    note: `exit ${hung.code}; ${sockets.length} connections opened in all`,
  });
  return rows;
}
