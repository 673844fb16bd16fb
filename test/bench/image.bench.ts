// The image and the chart: how much the image's /app weighs beside the production node_modules an
// unbundled image would have to carry; how long the image's entrypoint takes to start each job
// (`vaultkeeper <job> --help` from the staged folder) beside a bare `node -e 0`; and how long
// `helm template` takes for the all-jobs example beside `helm version` (the process alone).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from '../stack/layout.ts';
import { ALL_JOBS_VALUES, CHART_DIR, buildBundles, run as exec, stageImage } from '../helm/chart.ts';
import type { BenchRow } from './run.ts';

const RUNS = 7;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function bytesUnder(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((n, e) => n + bytesUnder(join(path, e)), 0);
}

async function timeMs(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore', cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env });
    child.on('error', reject);
    child.on('close', () => resolve());
  });
  return performance.now() - t0;
}

async function medianMs(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) xs.push(await timeMs(cmd, args, opts));
  return median(xs);
}

/** Every package directory an unbundled image of these jobs would need (pnpm's production tree). */
async function productionTreeBytes(jobs: string[]): Promise<number> {
  const dirs = new Set<string>();
  const walk = (deps: Record<string, { path?: string; dependencies?: Record<string, any> }> | undefined) => {
    for (const dep of Object.values(deps ?? {})) {
      if (!dep.path || dirs.has(dep.path)) continue;
      // Workspace packages are source folders; count only what comes from the registry.
      if (dep.path.includes('node_modules')) dirs.add(dep.path);
      walk(dep.dependencies);
    }
  };
  for (const job of jobs) {
    const ls = await exec('pnpm', ['ls', '--prod', '--depth', 'Infinity', '--json'], { cwd: join(REPO_ROOT, 'jobs', job) });
    walk((JSON.parse(ls.stdout) as Array<{ dependencies?: Record<string, any> }>)[0]?.dependencies);
  }
  // Optional dependencies for other platforms are listed but not installed.
  return [...dirs].filter((d) => existsSync(d)).reduce((n, d) => n + bytesUnder(d), 0);
}

export async function run(): Promise<BenchRow[]> {
  const { built } = await buildBundles();
  const app = await stageImage(built);
  const rows: BenchRow[] = [];

  const prodBytes = await productionTreeBytes(built);
  rows.push({
    name: `image /app, ${built.length} jobs`,
    value: bytesUnder(app) / 1024 / 1024,
    unit: 'MiB',
    baseline: prodBytes / 1024 / 1024,
    baselineName: 'their production node_modules',
    note: 'what the runtime stage copies, beside what an unbundled image would',
  });

  const bare = await medianMs(process.execPath, ['-e', '0'], { env: {} });
  rows.push({ name: 'node -e 0', value: bare, unit: 'ms', note: `median of ${RUNS}` });
  for (const job of built) {
    rows.push({
      name: `vaultkeeper ${job} --help (image entrypoint)`,
      value: await medianMs(process.execPath, [join(app, 'vaultkeeper.mjs'), job, '--help'], { cwd: app, env: {} }),
      unit: 'ms',
      baseline: bare,
      baselineName: 'node -e 0',
      note: `median of ${RUNS}, empty environment`,
    });
  }

  const helmStart = await medianMs('helm', ['version', '--short']);
  rows.push({
    name: 'helm template, all jobs on',
    value: await medianMs('helm', ['template', 'vaultkeeper', CHART_DIR, '-f', ALL_JOBS_VALUES]),
    unit: 'ms',
    baseline: helmStart,
    baselineName: 'helm version',
    note: `median of ${RUNS}; includes values.schema.json validation`,
  });
  rmSync(dirname(app), { recursive: true, force: true });
  return rows;
}
