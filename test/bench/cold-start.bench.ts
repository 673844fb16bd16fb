// Cold start of each bundled job: from spawning `node dist/<job>.mjs` to its first byte reaching
// Vault, beside a bare `node -e 0` (process start to exit). A TCP relay in front of the real
// OpenBao node timestamps the first byte; the job then runs on against the real server.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/layout.ts';
import { readStack, stackEnv } from '../stack/stack.ts';
import type { BenchRow } from './run.ts';

const RUNS = 7;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function relayTo(target: URL): Promise<{ port: number; arm: () => Promise<number>; close: () => void }> {
  // Only the first byte after arm() counts; later connections of the same run are ignored.
  let resolveFirst: ((t: number) => void) | undefined;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    client.once('data', () => {
      const t = performance.now();
      resolveFirst?.(t);
      resolveFirst = undefined;
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    arm: () => new Promise<number>((r) => (resolveFirst = r)),
    close: () => server.close(),
  };
}

/** The arguments a job's `pnpm job:<name>` script passes (e.g. its local-stack config file). */
function localArgs(job: string): string[] {
  const scripts = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const script = Object.values(scripts).find((s) => s.startsWith(`tsx test/stack/run-local.ts ${job}`));
  return script ? script.split(/\s+/).slice(3) : [];
}

function timeBareNode(): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    spawn(process.execPath, ['-e', '0']).on('close', () => resolve(performance.now() - t0));
  });
}

export async function run(): Promise<BenchRow[]> {
  const stack = readStack();
  const relay = await relayTo(new URL(stack.openbao.addr));
  const rows: BenchRow[] = [];
  const bare: number[] = [];
  for (let i = 0; i < RUNS; i++) bare.push(await timeBareNode());
  const baseline = median(bare);
  rows.push({ name: 'node -e 0', value: baseline, unit: 'ms', note: `median of ${RUNS}` });

  const jobs = readdirSync(join(REPO_ROOT, 'jobs')).filter((j) => existsSync(join(REPO_ROOT, 'jobs', j, 'dist', `${j}.mjs`)));
  for (const job of jobs) {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const env = { ...process.env, ...stackEnv(), VAULT_ADDR: `http://127.0.0.1:${relay.port}`, VAULT_TOKEN: stack.openbao.rootToken, LOG_LEVEL: 'error' };
      const firstByte = relay.arm();
      const t0 = performance.now();
      const child = spawn(process.execPath, [join(REPO_ROOT, 'jobs', job, 'dist', `${job}.mjs`), ...localArgs(job), '--dry-run'], { env, stdio: 'ignore', cwd: REPO_ROOT });
      const exited = new Promise<number>((r) => child.once('close', () => r(Number.NaN)));
      const t1 = await Promise.race([firstByte, exited]);
      child.kill('SIGKILL');
      await exited;
      if (!Number.isNaN(t1)) times.push(t1 - t0);
    }
    rows.push(
      times.length
        ? { name: `${job}: start → first Vault request`, value: median(times), unit: 'ms', baseline, baselineName: 'node -e 0', note: `median of ${times.length}; goal < 300 ms` }
        : { name: `${job}: start → first Vault request`, value: Number.NaN, unit: 'ms', note: 'made no Vault request in --dry-run' },
    );
  }
  relay.close();
  return rows;
}
