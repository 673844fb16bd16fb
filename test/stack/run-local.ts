// `pnpm job:<name> [args]`: runs a job from source. When VAULT_ADDR is not set and the local stack
// is up, it runs against the stack exactly as the CronJob would in a cluster: a service-account
// token minted by the apiserver for vaultkeeper-<job>, Kubernetes auth with the job's own role.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT, paths } from './layout.ts';
import { mintServiceAccountToken, stackEnv } from './stack.ts';

const [job, ...args] = process.argv.slice(2);
const main = job ? resolve(REPO_ROOT, 'jobs', job, 'src', 'main.ts') : '';
if (!job || !existsSync(main)) {
  process.stderr.write(`usage: run-local.ts <job> [args]; jobs are the folders under jobs/\n`);
  process.exit(2);
}

const env: NodeJS.ProcessEnv = { ...process.env };
let tokenDir: string | undefined;
if (!env.VAULT_ADDR && existsSync(paths.stackJson)) {
  Object.assign(env, stackEnv());
  delete env.VAULT_TOKEN;
  tokenDir = mkdtempSync(join(tmpdir(), `vaultkeeper-${job}-`));
  const tokenPath = join(tokenDir, 'token');
  writeFileSync(tokenPath, await mintServiceAccountToken('vaultkeeper', `vaultkeeper-${job}`, { audience: 'vault', expirationSeconds: 600 }), { mode: 0o600 });
  env.VAULT_AUTH_ROLE = `vaultkeeper-${job}`;
  env.VAULT_AUTH_TOKEN_PATH = tokenPath;
  process.stderr.write(`(running ${job} against the local stack as service account vaultkeeper/vaultkeeper-${job})\n`);
} else if (!env.VAULT_ADDR) {
  process.stderr.write('VAULT_ADDR is not set and the local stack is not up: run `pnpm stack:up` or point VAULT_ADDR at a Vault\n');
}

const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { env, stdio: 'inherit' });
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));
child.on('close', (code, signal) => {
  if (tokenDir) rmSync(tokenDir, { recursive: true, force: true });
  process.exitCode = code ?? (signal ? 1 : 0);
});
