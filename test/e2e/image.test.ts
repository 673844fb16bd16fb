// The image, without a Docker engine: the Dockerfile is read for what the image is (base, user,
// entrypoint, what it copies), its build stage's own script lays /app out in a clean temp folder,
// and every job then runs from there with nothing but `node`: no node_modules anywhere, an empty
// environment. The esbuild metafile of each bundle shows that no dev-only package went in.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../stack/layout.ts';
import { CHART_DIR, buildBundles, readDockerfile, run, runnableJobs, stageImage } from '../helm/chart.ts';
import { mintServiceAccountToken, stackEnv } from '../stack/stack.ts';

let imageRoot = '';
let built: string[] = [];

/** Runs node on the staged entrypoint with an empty environment, from the staged folder. */
function runStaged(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(imageRoot, 'vaultkeeper.mjs'), ...args], { cwd: imageRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

beforeAll(async () => {
  const res = await buildBundles();
  built = res.built;
  for (const [job, why] of Object.entries(res.failed)) console.warn(`!!! ${job} does not build:\n${why}`);
  imageRoot = await stageImage(built);
});

afterAll(() => {
  if (imageRoot) rmSync(dirname(imageRoot), { recursive: true, force: true });
});

describe('the Dockerfile', () => {
  const image = readDockerfile();
  const text = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');

  it('is multi-stage: builds in a Node 24 image, runs in a distroless Node 24 one', () => {
    expect(text.match(/^FROM\s/gm)?.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^ARG NODE_VERSION=24\.\d+\.\d+$/m);
    expect(text).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS build$/m);
    expect(image.from).toMatch(/^gcr\.io\/distroless\/nodejs24-debian12:nonroot$/);
  });

  it('runs as a non-root user, the same uid the chart runs pods as', () => {
    const [uid, gid] = image.user.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as { podSecurityContext: { runAsUser: number; runAsGroup: number } };
    expect(values.podSecurityContext.runAsUser).toBe(uid);
    expect(values.podSecurityContext.runAsGroup).toBe(gid);
  });

  it('starts node under tini, with the job chosen by the container\'s first argument', () => {
    expect(image.entrypoint).toEqual(['/usr/bin/tini', '--', '/nodejs/bin/node', '/app/vaultkeeper.mjs']);
    expect(image.cmd).toEqual([]);
    expect(image.workdir).toBe('/app');
  });

  it('copies into the runtime image only tini and what docker/stage-image.mjs laid out', () => {
    expect(image.copies).toEqual(['--from=build /usr/bin/tini-static /usr/bin/tini', '--from=build /out/ /app/']);
    expect(image.buildRuns.join('\n')).toContain('node docker/stage-image.mjs /out');
    expect(image.buildRuns.join('\n')).toContain('pnpm install --offline --frozen-lockfile');
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8');
    for (const pattern of ['**/node_modules', '**/dist', '.git']) expect(ignored).toContain(pattern);
  });
});

describe('the files the image gets, in a clean folder, with nothing but node', () => {
  it('builds every job there is', () => {
    expect(built).toEqual(runnableJobs());
  });

  it('holds the entrypoint and one bundle per job, with licences, and nothing else', () => {
    expect(listFiles(imageRoot)).toEqual(['jobs', 'vaultkeeper.mjs'].flatMap((f) => (f === 'jobs' ? built.flatMap((j) => [`jobs/${j}.mjs`, `jobs/${j}.mjs.LEGAL.txt`]) : [f])).sort());
    // No node_modules the bundles could fall back on, in the folder or above it.
    for (let dir = imageRoot; dir !== dirname(dir); dir = dirname(dir)) expect(existsSync(join(dir, 'node_modules')), dir).toBe(false);
  });

  it('lists its jobs and refuses an unknown one with exit 2', async () => {
    const help = await runStaged(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(`jobs: ${built.join(', ')}`);
    const unknown = await runStaged(['no-such-job']);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stdout.split('\n')[0]!)).toMatchObject({ level: 'error', msg: 'invalid usage', error: 'unknown job "no-such-job"' });
  });

  for (const job of runnableJobs()) {
    it(`runs ${job}: --help (exit 0), and a missing Vault address is a config error (exit 2)`, async () => {
      if (!built.includes(job)) throw new Error(`${job} did not build`);
      const help = await runStaged([job, '--help']);
      expect(help.stderr).toBe('');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain(`vaultkeeper ${job}:`);
      expect(help.stdout).toContain('VAULT_ADDR');

      const bad = await runStaged([job]);
      expect(bad.code).toBe(2);
      const line = JSON.parse(bad.stdout.split('\n').find((l) => l.startsWith('{'))!) as { msg: string; issues: Array<{ field: string }> };
      expect(line.msg).toBe('invalid configuration');
      expect(line.issues.map((i) => i.field)).toContain('vault.address');
    });
  }
});

describe('a bundled job run against the stack', () => {
  // Node warns about url.parse() (DEP0169) only for code outside node_modules, so only a bundle
  // shows it: prom-client's Pushgateway client called it on every push, a non-JSON line on stderr.
  it('prints JSON lines only, nothing on stderr (no DEP0169 url.parse warning), and pushes its metrics', async () => {
    if (!built.includes('kms-probe')) throw new Error('kms-probe did not build');
    const dir = mkdtempSync(join(tmpdir(), 'vk-image-run-'));
    try {
      writeFileSync(join(dir, 'token'), await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-kms-probe', { audience: 'vault' }), { mode: 0o600 });
      const env = { ...stackEnv(), VAULT_AUTH_ROLE: 'vaultkeeper-kms-probe', VAULT_AUTH_TOKEN_PATH: join(dir, 'token'), KMS_PROBE_TABLE: 'false', LOG_LEVEL: 'debug' };
      const r = await runStaged(['kms-probe'], env);
      expect(r.stderr).toBe('');
      expect(r.code, r.stdout).toBe(0);
      const lines = r.stdout.split('\n').filter((l) => l !== '');
      expect(lines.filter((l) => !l.startsWith('{'))).toEqual([]);
      expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('metrics pushed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the bundles carry no dev dependencies', () => {
  // Tools that build and test the code; none of them has any business at run time.
  const DEV_ONLY = /^(vitest|@vitest\/.*|vite|typescript|tsx|esbuild|@esbuild\/.*|turbo|@types\/.*|rollup|@rollup\/.*)$/;

  /** The package an input file of the bundle belongs to. */
  function packageOf(input: string): string {
    const nm = input.lastIndexOf('node_modules/');
    if (nm >= 0) {
      const [a, b] = input.slice(nm + 'node_modules/'.length).split('/');
      return a!.startsWith('@') ? `${a}/${b}` : a!;
    }
    const ws = /(?:^|\/)packages\/([^/]+)\/src\//.exec(input);
    if (ws) return `@vaultkeeper/${ws[1]}`;
    return '(the job itself)';
  }

  function prodClosure(tree: Record<string, any> | undefined, into = new Set<string>()): Set<string> {
    for (const [name, dep] of Object.entries(tree ?? {})) {
      if (into.has(name)) continue;
      into.add(name);
      prodClosure(dep.dependencies, into);
    }
    return into;
  }

  for (const job of runnableJobs()) {
    it(job, async () => {
      if (!built.includes(job)) throw new Error(`${job} did not build`);
      const meta = JSON.parse(readFileSync(join(REPO_ROOT, 'jobs', job, 'dist', `${job}.mjs.meta.json`), 'utf8')) as { inputs: Record<string, unknown> };
      const bundled = new Set(Object.keys(meta.inputs).map(packageOf));
      expect([...bundled].filter((p) => DEV_ONLY.test(p))).toEqual([]);

      const ls = await run('pnpm', ['ls', '--prod', '--depth', 'Infinity', '--json'], { cwd: join(REPO_ROOT, 'jobs', job) });
      expect(ls.code, ls.stderr).toBe(0);
      const prod = prodClosure((JSON.parse(ls.stdout) as Array<{ dependencies?: Record<string, any> }>)[0]?.dependencies);
      // Every package in the bundle is one the job needs in production, not a dev dependency.
      expect([...bundled].filter((p) => p !== '(the job itself)' && !prod.has(p)).sort()).toEqual([]);
      // The check sees packages at all: the runtime and its logger are in every bundle.
      expect(bundled.has('@vaultkeeper/runtime') && bundled.has('pino')).toBe(true);
    });
  }
});
