// Follows the break-glass runbook of docs/emergency-token.md step by step, as an operator would:
// the bundle's `reveal` on a real terminal (a pty from util-linux `script`), the commands it
// prints run verbatim in bash with the launcher pasted on stdin, the real `bao` CLI against the
// real OpenBao cluster. The root token stands in only for "log in with OIDC as an admin" (step 6).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from '@vaultkeeper/runtime';
import { REPO_ROOT } from '../../../test/stack/layout.ts';
import { readStack, stackEnv } from '../../../test/stack/stack.ts';
import { findPlantedSecrets } from '../../../test/support/run-job.ts';
import { bootstrapEmergencyToken, buildBundle, noteAccessors, readState, revokeAll, rootVault, runEmergencyToken, scenario, tokenAlive } from './stack-fixture.ts';

const s = scenario('runbook');
const BUNDLE = join(REPO_ROOT, 'jobs/emergency-token/dist/emergency-token.mjs');

/**
 * A shell environment like an operator's: PATH (bao, node), HOME, no Vault token; VAULT_CACERT
 * when Vault's certificate comes from an internal CA, as the runbook says to set it.
 */
function operatorEnv(extra: Record<string, string> = {}): Record<string, string> {
  const tls = readStack().openbao.tls;
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm', ...(tls ? { VAULT_CACERT: tls.caFile } : {}), ...extra };
}

function bash(script: string, opts: { input?: string; env?: Record<string, string> } = {}) {
  return spawnSync('bash', ['-euo', 'pipefail', '-c', script], { input: opts.input ?? '', env: operatorEnv(opts.env), encoding: 'utf8' });
}

/** Runs a command on a pseudo-terminal (util-linux `script`), returning what the terminal showed. */
function onTerminal(command: string, env: Record<string, string>): Promise<{ code: number | null; screen: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], { env: operatorEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.on('data', (c: Buffer) => (screen += c));
    child.stderr.on('data', (c: Buffer) => (screen += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, screen: screen.replace(/\r\n/g, '\n') }));
  });
}

/** The runbook's step 2 text, so that a change to the doc without the test (or back) is noticed. */
const runbook = readFileSync(join(REPO_ROOT, 'docs/emergency-token.md'), 'utf8').split('## Break-glass runbook')[1] ?? '';

let launcher = '';
let accessor = '';
let commands: string[] = [];

beforeAll(async () => {
  await bootstrapEmergencyToken();
  buildBundle();
  // The CronJob has been doing its work before the bad day.
  const run = await runEmergencyToken(s);
  expect(run.code, run.all).toBe(0);
  noteAccessors(await readState(s));
});

afterAll(async () => {
  await revokeAll();
});

describe('break-glass runbook (docs/emergency-token.md)', () => {
  it('1. Vault itself answers and is unsealed (no token needed)', () => {
    expect(runbook).toContain('`vault status` (or `bao status`) needs no');
    const res = bash('bao status -format=json', { env: { VAULT_ADDR: readStack().openbao.addr } });
    expect(res.status, res.stderr).toBe(0);
    const status = z.looseObject({ sealed: z.boolean(), ha_enabled: z.boolean() }).parse(JSON.parse(res.stdout));
    expect(status).toMatchObject({ sealed: false, ha_enabled: true });
  });

  it('2. reveal shows the launcher on a terminal, with the commands (and refuses a pipe)', async () => {
    expect(runbook).toContain('node emergency-token.mjs reveal');
    const { aws } = readStack();
    // What the runbook asks the operator to set: VAULT_ADDR, the bucket, the cluster; plus AWS access.
    const env = {
      ...stackEnv(),
      BREAKGLASS_S3_BUCKET: aws.buckets.breakglass,
      BREAKGLASS_CLUSTER: s.cluster,
      BREAKGLASS_S3_KEY: s.s3Key, // only because the tests keep each scenario apart
      BREAKGLASS_CLI: 'bao',
    };
    const piped = spawnSync(process.execPath, [BUNDLE, 'reveal'], { env: operatorEnv(env), encoding: 'utf8' });
    expect(piped.status).toBe(1);
    expect(piped.stdout).toMatch(/not a terminal/);

    const { code, screen } = await onTerminal(`node ${BUNDLE} reveal`, env);
    expect(code, screen).toBe(0);
    const lines = screen.split('\n');
    const storedAt = lines.findIndex((l) => l.startsWith('  stored at'));
    accessor = lines.find((l) => l.startsWith('  accessor'))!.split(/\s+/)[2]!;
    launcher = lines.slice(storedAt + 1).find((l) => /^ {2}\S+$/.test(l))!.trim();
    const from = lines.findIndex((l) => l.startsWith('To get a 1h admin token'));
    const to = lines.findIndex((l) => l.startsWith('When done'));
    commands = lines.slice(from + 1, to).map((l) => l.trim()).filter(Boolean);
    expect(accessor).toBe((await readState(s)).accessor);
    expect(await tokenAlive(accessor)).toBe(true);
    expect(commands[0]).toMatch(/^read -rs BREAKGLASS_LAUNCHER/);
    expect(commands.join('\n')).not.toContain(launcher);
    // The terminal showed no JSON log line carrying it.
    expect(findPlantedSecrets(lines.filter((l) => l.startsWith('{')).join('\n'), { launcher })).toEqual([]);
  });

  it('3–5. the printed commands mint a 1h non-renewable admin token; it works, and revoke -self ends it', () => {
    expect(runbook).toContain('vault token create -role=breakglass-admin -field=token');
    const script = [
      ...commands,
      'echo "@@ lookup"',
      'bao token lookup -format=json',
      'echo "@@ admin can read policies"',
      'bao policy read vaultkeeper-emergency-token >/dev/null && echo yes',
      'echo "@@ renew"',
      'bao token renew >/dev/null 2>&1 && echo renewed || echo not-renewable',
      'bao token revoke -self >/dev/null',
      'echo "@@ after revoke"',
      'bao token lookup >/dev/null 2>&1 && echo still-valid || echo revoked',
    ].join('\n');
    // The launcher is pasted into `read -rs`, as a person would.
    const res = bash(script, { input: `${launcher}\n` });
    expect(res.status, res.stderr).toBe(0);
    const [, lookupPart, adminPart, renewPart, afterPart] = res.stdout.split(/^@@ .*$/m);
    const data = z
      .object({ data: z.looseObject({ policies: z.array(z.string()), renewable: z.boolean(), ttl: z.number(), orphan: z.boolean() }) })
      .parse(JSON.parse(lookupPart!.trim())).data;
    expect(data.policies).toEqual(['breakglass-admin', 'default']);
    expect(data.renewable).toBe(false);
    expect(data.orphan).toBe(false);
    expect(data.ttl).toBeGreaterThan(3500);
    expect(data.ttl).toBeLessThanOrEqual(3600);
    expect(adminPart!.trim()).toBe('yes');
    expect(renewPart!.trim()).toBe('not-renewable');
    expect(afterPart!.trim()).toBe('revoked');
    // The launcher itself was never on a command line nor echoed.
    expect(res.stdout + res.stderr).not.toContain(launcher);
  });

  it('6. once OIDC is back: revoke the exposed launcher by accessor, run the job, and it rotates at once', async () => {
    expect(runbook).toContain('vault token revoke -accessor <accessor>');
    const admin = await rootVault(); // stands in for an OIDC admin login
    try {
      await admin.write('auth/token/revoke-accessor', { accessor });
    } finally {
      admin.close();
    }
    expect(await tokenAlive(accessor)).toBe(false);

    const run = await runEmergencyToken(s); // what `kubectl create job --from=cronjob/...` runs
    expect(run.code, run.all).toBe(0);
    expect(run.summary).toMatchObject({ action: 'rotated', reason: 'the recorded credential is no longer valid in Vault', previousRevoked: 'gone' });
    expect(findPlantedSecrets(run.all, { launcher })).toEqual([]);
    const record = await readState(s);
    noteAccessors(record);
    expect(record.accessor).not.toBe(accessor);
    expect(await tokenAlive(record.accessor!)).toBe(true);

    const check = await runEmergencyToken(s, ['check']);
    expect(check.code, check.all).toBe(0);
    expect(check.summary).toMatchObject({ accessor: record.accessor, problems: [] });
  });
});
