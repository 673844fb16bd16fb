import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from '../stack/layout.ts';
import { mintServiceAccountToken, stackEnv } from '../stack/stack.ts';

export interface JobRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout lines that parsed as JSON (the pino log lines and the summary). */
  lines: Array<Record<string, unknown>>;
  /** The final `finished` line's summary object. */
  summary: Record<string, unknown> | undefined;
  /** Everything the job printed, for secret searches. */
  all: string;
}

export interface RunJobProcessOptions {
  /** Job folder name under jobs/, e.g. `raft-snapshot`. */
  job: string;
  /** Run this TypeScript file instead of jobs/<job>/src/main.ts (test fixtures). */
  entry?: string;
  /** Whose service account and Vault role to log in as (default: the job's own). */
  identity?: string;
  args?: string[];
  /** Extra environment on top of the stack's (set a key to undefined to drop it). */
  env?: Record<string, string | undefined>;
  /**
   * `kubernetes` (default): mint a real service-account token for vaultkeeper-<job> through the
   * apiserver's TokenRequest API and log in with the job's own role and least-privilege policy.
   * `none`: leave auth to the env given.
   */
  auth?: 'kubernetes' | 'none';
  /** Run the esbuild bundle (dist/<job>.mjs) instead of the TypeScript source. */
  bundle?: boolean;
  /** Called with the child once it started (e.g. to send SIGTERM at the right moment). */
  onStart?: (child: import('node:child_process').ChildProcess) => void;
  /** Called for every stdout line as it arrives. */
  onLine?: (line: string, child: import('node:child_process').ChildProcess) => void;
  timeoutMs?: number;
}


/** Runs a job as its own process against the local stack, the way a CronJob's pod would. */
export async function runJobProcess(opts: RunJobProcessOptions): Promise<JobRun> {
  const env: Record<string, string | undefined> = { ...process.env, ...stackEnv() };
  delete env.VAULT_TOKEN;
  let tokenDir: string | undefined;
  if ((opts.auth ?? 'kubernetes') === 'kubernetes') {
    const dir = (tokenDir = mkdtempSync(join(tmpdir(), `vk-${opts.job}-`)));
    const tokenPath = join(dir, 'token');
    const who = `vaultkeeper-${opts.identity ?? opts.job}`;
    writeFileSync(tokenPath, await mintServiceAccountToken('vaultkeeper', who, { audience: 'vault' }), { mode: 0o600 });
    env.VAULT_AUTH_ROLE = who;
    env.VAULT_AUTH_TOKEN_PATH = tokenPath;
  }
  Object.assign(env, opts.env);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];

  const [cmd, args] = opts.bundle
    ? [process.execPath, [resolve(REPO_ROOT, 'jobs', opts.job, 'dist', `${opts.job}.mjs`), ...(opts.args ?? [])]]
    : // `node --import tsx` rather than the tsx CLI: the job is then the child itself, so every
      // signal a test sends (SIGKILL included) reaches it.
      [process.execPath, ['--import', 'tsx', opts.entry ?? resolve(REPO_ROOT, 'jobs', opts.job, 'src', 'main.ts'), ...(opts.args ?? [])]];

  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        opts.onLine?.(line, child);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('error', reject);
    opts.onStart?.(child);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (tokenDir) rmSync(tokenDir, { recursive: true, force: true });
      resolveRun({ code, signal, stdout, stderr, ...parseJobOutput(stdout), all: stdout + stderr });
    });
  });
}

/** The JSON log lines a job printed, and the summary of its final `finished` line. */
export function parseJobOutput(stdout: string): { lines: Array<Record<string, unknown>>; summary: Record<string, unknown> | undefined } {
  const lines = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return { lines, summary: lines.findLast((l) => l.msg === 'finished')?.summary as Record<string, unknown> | undefined };
}

/** Fails (listing which, never the values) when any planted secret appears in the text. */
export function findPlantedSecrets(text: string, secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, value]) => value && (text.includes(value) || text.includes(Buffer.from(value).toString('base64'))))
    .map(([name]) => name);
}
