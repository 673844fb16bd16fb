// What the chart tests share: running helm and kubectl against the stack's apiserver, rendering
// the chart, the values that point an install at the local stack, and building the job bundles
// and the image's /app folder.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { REPO_ROOT } from '../stack/layout.ts';
import { readStack } from '../stack/stack.ts';

export const CHART_DIR = join(REPO_ROOT, 'helm/vaultkeeper');
export const ALL_JOBS_VALUES = join(CHART_DIR, 'ci/all-jobs-values.yaml');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', env: opts.env ?? process.env, cwd: opts.cwd ?? REPO_ROOT, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        if (err && code === -1) reject(err);
        else resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}

/** helm against the stack's apiserver (admin kubeconfig); never throws on a non-zero exit. */
export function helm(args: string[]): Promise<Exec> {
  return run('helm', ['--kubeconfig', readStack().kube.kubeconfig, ...args]);
}

/** kubectl with the admin kubeconfig, or impersonating someone with `as`; never throws. */
export function kubectlAs(args: string[], opts: { as?: string; input?: string } = {}): Promise<Exec> {
  const stack = readStack();
  return run('kubectl', ['--kubeconfig', stack.kube.kubeconfig, ...(opts.as ? ['--as', opts.as] : []), ...args], opts.input === undefined ? {} : { input: opts.input });
}

export async function kubectlJson<T = any>(args: string[]): Promise<T> {
  const res = await kubectlAs([...args, '-o', 'json']);
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${res.stderr.trim()}`);
  return JSON.parse(res.stdout) as T;
}

/** A values file in a temp dir (helm reads files; --set cannot express lists of maps well). */
export function valuesFile(values: unknown, name = 'values.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'vk-helm-values-'));
  const file = join(dir, name);
  writeFileSync(file, stringify(values));
  return file;
}

/** `helm template` → the objects it renders; throws with helm's message when it fails. */
export async function renderChart(opts: { release?: string; namespace?: string; valueFiles?: string[] } = {}): Promise<K8sObject[]> {
  const res = await run('helm', [
    'template',
    opts.release ?? 'vaultkeeper',
    CHART_DIR,
    '--namespace',
    opts.namespace ?? 'vaultkeeper',
    ...(opts.valueFiles ?? []).flatMap((f) => ['-f', f]),
  ]);
  if (res.code !== 0) throw new Error(`helm template failed: ${res.stderr.trim()}`);
  return parseManifests(res.stdout);
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === 'object' && 'kind' in o);
}

export function jobFolders(): string[] {
  return readdirSync(join(REPO_ROOT, 'jobs'), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(REPO_ROOT, 'jobs', e.name, 'package.json')))
    .map((e) => e.name)
    .sort();
}

/** Jobs with a runnable entry (src/main.ts and src/job.ts), i.e. the ones that can be built and run. */
export function runnableJobs(): string[] {
  return jobFolders().filter((j) => existsSync(join(REPO_ROOT, 'jobs', j, 'src', 'main.ts')) && existsSync(join(REPO_ROOT, 'jobs', j, 'src', 'job.ts')));
}

/**
 * Bundles each runnable job with its own build script (vk-bundle), so the files under test are
 * fresh. Returns the jobs that built; a job that does not build is reported, not hidden.
 */
export async function buildBundles(jobs = runnableJobs()): Promise<{ built: string[]; failed: Record<string, string> }> {
  const built: string[] = [];
  const failed: Record<string, string> = {};
  await Promise.all(
    jobs.map(async (job) => {
      const res = await run('pnpm', ['-s', 'run', 'build'], { cwd: join(REPO_ROOT, 'jobs', job), timeoutMs: 180_000 });
      if (res.code === 0 && existsSync(join(REPO_ROOT, 'jobs', job, 'dist', `${job}.mjs`))) built.push(job);
      else failed[job] = (res.stderr || res.stdout).trim().split('\n').slice(-5).join('\n');
    }),
  );
  return { built: built.sort(), failed };
}

/** The image's /app, laid out by the same script the Dockerfile runs, in a fresh temp folder. */
export async function stageImage(jobs: string[]): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'vk-image-')), 'app');
  const res = await run(process.execPath, [join(REPO_ROOT, 'docker/stage-image.mjs'), dir, ...jobs]);
  if (res.code !== 0) throw new Error(`stage-image failed: ${res.stderr}`);
  return dir;
}

/** The final stage of the Dockerfile: its ENTRYPOINT, CMD, WORKDIR, USER and COPY lines. */
export interface ImageSpec {
  from: string;
  entrypoint: string[];
  cmd: string[];
  workdir: string;
  user: string;
  copies: string[];
  buildRuns: string[];
}

export function readDockerfile(file = join(REPO_ROOT, 'Dockerfile')): ImageSpec {
  // Join continuation lines, drop comments.
  const lines = readFileSync(file, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: string[][] = [];
  for (const line of lines) {
    if (/^FROM\s/i.test(line)) stages.push([]);
    stages.at(-1)?.push(line);
  }
  const final = stages.at(-1) ?? [];
  const instr = (name: string, stage = final) => stage.filter((l) => new RegExp(`^${name}\\s`, 'i').test(l)).map((l) => l.slice(name.length).trim());
  const exec = (v: string | undefined) => (v ? (JSON.parse(v) as string[]) : []);
  return {
    from: instr('FROM')[0] ?? '',
    entrypoint: exec(instr('ENTRYPOINT').at(-1)),
    cmd: exec(instr('CMD').at(-1)),
    workdir: instr('WORKDIR').at(-1) ?? '/',
    user: instr('USER').at(-1) ?? '',
    copies: instr('COPY'),
    buildRuns: stages.slice(0, -1).flatMap((s) => instr('RUN', s)),
  };
}

/** The payload of a JWT (no verification: the apiserver minted it, the test only reads its claims). */
export function jwtClaims(jwt: string): Record<string, any> {
  const payload = jwt.split('.')[1] ?? '';
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, any>;
}

/** A namespace for one test, with the restricted Pod Security Standard enforced (and warned on). */
export async function createNamespace(name: string): Promise<void> {
  const res = await kubectlAs(['apply', '-f', '-'], {
    input: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name,
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/warn-version': 'latest',
        },
      },
    }),
  });
  if (res.code !== 0) throw new Error(`create namespace ${name}: ${res.stderr}`);
}

/**
 * Deletes a test namespace for good. The stack runs no controller-manager, so nothing would
 * empty a Terminating namespace or remove its finalizer: delete what the tests put there, then
 * finalize it through the API (what the namespace controller does once it is empty).
 */
export async function deleteNamespace(name: string): Promise<void> {
  await kubectlAs(['-n', name, 'delete', 'jobs,pods,cronjobs,configmaps,serviceaccounts,secrets,roles,rolebindings,networkpolicies', '--all', '--wait=false']);
  await kubectlAs(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']);
  const ns = await kubectlAs(['get', 'namespace', name, '-o', 'json']);
  if (ns.code !== 0) return;
  const body = JSON.parse(ns.stdout) as { spec?: { finalizers?: string[] } };
  body.spec = { ...body.spec, finalizers: [] };
  await kubectlAs(['replace', '--raw', `/api/v1/namespaces/${name}/finalize`, '-f', '-'], { input: JSON.stringify(body) });
}

/** Every object (namespaced in `namespace`, and cluster-scoped) that carries these labels. */
export async function objectsLabelled(selector: string, namespace: string): Promise<string[]> {
  const kinds = async (namespaced: boolean) => {
    const res = await kubectlAs(['api-resources', '--verbs=list', `--namespaced=${namespaced}`, '-o', 'name']);
    if (res.code !== 0) throw new Error(res.stderr);
    // Events are noise here; they are not created by the chart.
    return res.stdout.split('\n').filter((k) => k && !k.startsWith('events'));
  };
  const found: string[] = [];
  for (const [scope, list] of [['ns', await kinds(true)], ['cluster', await kinds(false)]] as const) {
    const res = await kubectlAs(['get', list.join(','), '-l', selector, '-o', 'name', ...(scope === 'ns' ? ['-n', namespace] : [])]);
    if (res.code !== 0) throw new Error(res.stderr);
    found.push(...res.stdout.split('\n').filter(Boolean));
  }
  return found;
}

export interface CanIRow {
  resource: string;
  nonResourceUrl: string;
  resourceNames: string;
  verbs: string[];
}

/** `kubectl auth can-i --list` as rows (kubectl has no JSON output for it). */
export async function canIList(as: string, namespace: string): Promise<CanIRow[]> {
  const res = await kubectlAs(['auth', 'can-i', '--list', '-n', namespace], { as });
  if (res.code !== 0) throw new Error(res.stderr);
  const [header, ...rows] = res.stdout.split('\n').filter((l) => l.trim());
  const cols = ['Non-Resource URLs', 'Resource Names', 'Verbs'].map((c) => header!.indexOf(c));
  return rows.map((row) => {
    const cut = (a: number, b?: number) => row.slice(a, b).trim();
    return {
      resource: cut(0, cols[0]),
      nonResourceUrl: cut(cols[0]!, cols[1]),
      resourceNames: cut(cols[1]!, cols[2]),
      verbs: cut(cols[2]!).replace(/^\[|\]$/g, '').split(' ').filter(Boolean),
    };
  });
}

/** What an account may do beyond what every authenticated account may: `resource:verb` pairs. */
export async function grantedBeyondBaseline(as: string, baselineAs: string, namespace: string): Promise<string[]> {
  const pairs = (rows: CanIRow[]) => new Set(rows.flatMap((r) => r.verbs.map((v) => `${r.resource || r.nonResourceUrl}${r.resourceNames !== '[]' ? r.resourceNames : ''}:${v}`)));
  const [mine, base] = await Promise.all([canIList(as, namespace), canIList(baselineAs, namespace)]);
  const baseline = pairs(base);
  return [...pairs(mine)].filter((p) => !baseline.has(p)).sort();
}
