// oidc-rotation against the real stack, on a mount of its own (never the shared auth/oidc):
// - a sync that finds nothing to do, and a whole rotation, both run in-process through runJob
//   (the job's own work, without process start-up);
// - the login outage of a rotation: from Authentik holding the new secret to Vault's config
//   holding it (the only time a login fails), beside a bare auth/<mount>/config write by root,
//   the shortest that window could possibly be.
import { PassThrough } from 'node:stream';
import { runJob } from '@vaultkeeper/runtime';
import { job } from '../../jobs/oidc-rotation/src/job.ts';
import { authentikSecret, createTestbed, destroyTestbed, readConfig, rootVault } from '../../jobs/oidc-rotation/test/testbed.ts';
import { readStack } from '../stack/stack.ts';
import type { BenchRow } from './run.ts';

const RUNS = 7;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function runInProcess(args: string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; lines: Array<Record<string, unknown>>; code: number }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c));
  const t0 = performance.now();
  const saved = process.exitCode;
  const code = await runJob(job, { argv: args, env, stdout: out });
  const ms = performance.now() - t0;
  process.exitCode = saved;
  const lines = text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ms, lines, code };
}

const at = (lines: Array<Record<string, unknown>>, msg: string) => Date.parse(String(lines.find((l) => String(l.msg).startsWith(msg))?.time));

export async function run(): Promise<BenchRow[]> {
  const stack = readStack();
  const tb = await createTestbed();
  const vault = await rootVault();
  try {
    const env = { VAULT_ADDR: vault.currentNode, VAULT_TOKEN: stack.openbao.rootToken, OIDC_ROTATION_MOUNT: tb.mount, LOG_LEVEL: 'info' };
    const first = await runInProcess(['sync'], env);
    if (first.code !== 0) throw new Error(`adopting sync failed: ${JSON.stringify(first.lines.at(-1))}`);

    const noop: number[] = [];
    const rotate: number[] = [];
    const outage: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const s = await runInProcess(['sync'], env);
      if (s.code !== 0 || (s.lines.at(-1)?.summary as { changed?: boolean })?.changed !== false) throw new Error('sync changed something');
      noop.push(s.ms);

      const r = await runInProcess(['rotate'], env);
      if (r.code !== 0) throw new Error(`rotate failed: ${JSON.stringify(r.lines.at(-1))}`);
      rotate.push(r.ms);
      outage.push(at(r.lines, "Vault's OIDC config holds the new secret") - at(r.lines, 'Authentik holds the new secret'));

      // The floor: one whole-config write of the same secret, nothing else.
      const { status: _s, ...cfg } = await readConfig(tb);
      const secret = await authentikSecret(tb.providerPk);
      const t0 = performance.now();
      await vault.write(`auth/${tb.mount}/config`, { ...cfg, oidc_client_secret: secret });
      bare.push(performance.now() - t0);
    }
    const noopMs = median(noop);
    return [
      { name: 'sync, nothing to do (in-process)', value: noopMs, unit: 'ms', note: `median of ${RUNS}; reads only` },
      { name: 'rotate, whole (in-process)', value: median(rotate), unit: 'ms', baseline: noopMs, baselineName: 'sync, nothing to do', note: `median of ${RUNS}; write-ahead, PATCH, config write, 3 checks, record` },
      {
        name: 'rotate: login outage (Authentik new, Vault old)',
        value: median(outage),
        unit: 'ms',
        baseline: median(bare),
        baselineName: 'bare config write',
        note: `median of ${RUNS}; from the log line after the PATCH to the one after the config write (1 ms resolution)`,
      },
    ];
  } finally {
    vault.close();
    await destroyTestbed(tb);
  }
}
