// The optional one-shot kind: a one-use AppRole secret ID whose login yields a 1h admin token,
// against the real OpenBao AppRole method (enabled by the fixture; see stack-fixture.ts).
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from '@vaultkeeper/runtime';
import { VaultError } from '@vaultkeeper/vault';
import { readStack } from '../../../test/stack/stack.ts';
import { findPlantedSecrets } from '../../../test/support/run-job.ts';
import { fingerprint } from '../src/fingerprint.ts';
import { mintCommands } from '../src/reveal.ts';
import { bootstrapEmergencyToken, clientWith, readState, rootVault, runEmergencyToken, scenario, secretIdAlive, sinkHolds } from './stack-fixture.ts';

const s = scenario('approle', { BREAKGLASS_KIND: 'approle-secret-id', BREAKGLASS_TTL: '2h', BREAKGLASS_MIN_AGE: '1h', BREAKGLASS_EXPIRY_WARN: '10m' });
const made: string[] = [];

beforeAll(async () => {
  await bootstrapEmergencyToken();
});

afterAll(async () => {
  const vault = await rootVault();
  for (const accessor of made) {
    await vault.write('auth/approle/role/breakglass/secret-id-accessor/destroy', { secret_id_accessor: accessor }).catch(() => undefined);
  }
  vault.close();
});

describe('AppRole secret-ID kind', () => {
  it('issues a one-use secret ID, delivers it with its role ID, and proves it by accessor without spending it', async () => {
    const run = await runEmergencyToken(s);
    expect(run.code, run.all).toBe(0);
    const record = await readState(s);
    made.push(record.accessor!);
    expect(record).toMatchObject({ kind: 'approle-secret-id', fingerprint: expect.stringMatching(/^sha256:/) });
    const held = (await sinkHolds(s))!;
    expect(held).toMatchObject({ kind: 'approle-secret-id', accessor: record.accessor, mintWith: 'approle/breakglass', roleId: expect.any(String) });
    expect(fingerprint(held.secret)).toBe(record.fingerprint);
    expect(findPlantedSecrets(run.all, { secretId: held.secret })).toEqual([]);
    // Proven without a login: it still has its one use.
    expect(await secretIdAlive(record.accessor!)).toBe(true);
    // BREAKGLASS_TTL=2h: the secret ID expires when asked, within the role's secret_id_ttl.
    expect(Date.parse(record.expiresAt!) - Date.now()).toBeLessThanOrEqual(2 * 3600_000);
  });

  it('a forced rotation destroys the old secret ID by its accessor', async () => {
    const old = await readState(s);
    const run = await runEmergencyToken(s, ['--force']);
    expect(run.code, run.all).toBe(0);
    const record = await readState(s);
    made.push(record.accessor!);
    expect(run.summary).toMatchObject({ action: 'rotated', previousAccessor: old.accessor, previousRevoked: 'revoked' });
    expect(await secretIdAlive(old.accessor!)).toBe(false);
    expect(await secretIdAlive(record.accessor!)).toBe(true);
  });

  it("reveal's commands log in once for a 1h admin token; the secret ID is then spent and the watchdog says so", async () => {
    const held = (await sinkHolds(s))!;
    const script = [...mintCommands(held, 'bao'), 'bao token lookup -format=json'].join('\n');
    const tls = readStack().openbao.tls;
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...(tls ? { VAULT_CACERT: tls.caFile } : {}) };
    const first = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { input: `${held.secret}\n`, env, encoding: 'utf8' });
    expect(first.status, first.stderr).toBe(0);
    const lookup = z
      .object({ data: z.looseObject({ id: z.string(), policies: z.array(z.string()), ttl: z.number(), creation_time: z.number(), expire_time: z.string() }) })
      .parse(JSON.parse(first.stdout.slice(first.stdout.lastIndexOf('\n{') + 1)));
    expect(lookup.data.policies).toContain('breakglass-admin');
    expect(lookup.data.ttl).toBeLessThanOrEqual(3600);
    expect(Date.parse(lookup.data.expire_time) - lookup.data.creation_time * 1000).toBeLessThanOrEqual(3600_000 + 1000);

    const second = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { input: `${held.secret}\n`, env, encoding: 'utf8' });
    expect(second.status).not.toBe(0);
    expect(second.stderr).toMatch(/invalid role or secret ID/);

    const check = await runEmergencyToken(s, ['check']);
    expect(check.code).toBe(1);
    expect(check.all).toMatch(/no longer valid/);

    // The admin token from the one login (lookup shows its id): end it.
    const admin = await clientWith(lookup.data.id);
    await admin.write('auth/token/revoke-self', {});
    admin.close();
  });

  it('the next rotation replaces a spent secret ID at once, whatever its age', async () => {
    const run = await runEmergencyToken(s);
    expect(run.code, run.all).toBe(0);
    expect(run.summary).toMatchObject({ action: 'rotated', reason: 'the recorded credential is no longer valid in Vault', previousRevoked: 'gone' });
    made.push((await readState(s)).accessor!);
  });

  it("the role gives the admin policy for 1h at most, and the job's policy reaches that role only", async () => {
    const vault = await rootVault();
    try {
      const role = z.looseObject({ token_policies: z.array(z.string()), secret_id_num_uses: z.number(), token_explicit_max_ttl: z.number() }).parse(await vault.read('auth/approle/role/breakglass'));
      expect(role).toMatchObject({ token_policies: ['breakglass-admin'], secret_id_num_uses: 1, token_explicit_max_ttl: 3600 });
      const res = await vault.call('auth/token/create', { method: 'POST', body: { policies: ['vaultkeeper-emergency-token'], ttl: '5m', no_default_policy: true } });
      const token = z.object({ auth: z.object({ client_token: z.string() }) }).parse(res.body).auth.client_token;
      const asJob = await clientWith(token);
      try {
        expect(await asJob.read('auth/approle/role/breakglass/role-id')).toBeDefined();
        await expect(asJob.read('auth/approle/role/other/role-id')).rejects.toSatisfy((e: unknown) => e instanceof VaultError && e.status === 403);
        await expect(asJob.call('auth/approle/role/other/secret-id', { method: 'POST', body: {} })).rejects.toSatisfy((e: unknown) => e instanceof VaultError && e.status === 403);
      } finally {
        await asJob.write('auth/token/revoke-self', {}).catch(() => undefined);
        asJob.close();
      }
    } finally {
      vault.close();
    }
  });
});
