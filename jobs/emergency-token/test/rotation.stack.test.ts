// The emergency-token job against the real stack: OpenBao's token store and KV v2, moto's S3 and
// KMS, the Pushgateway, and a service-account token minted by the real apiserver for each run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, z } from '@vaultkeeper/runtime';
import { VaultError } from '@vaultkeeper/vault';
import { POLICIES_DIR } from '../../../test/stack/layout.ts';
import { readStack } from '../../../test/stack/stack.ts';
import { findPlantedSecrets, type JobRun } from '../../../test/support/run-job.ts';
import { fingerprint } from '../src/fingerprint.ts';
import { ConcurrentRunError, StateStore } from '../src/state-record.ts';
import {
  createdAccessor,
  awsClients,
  bootstrapEmergencyToken,
  buildBundle,
  clientWith,
  messages,
  noteAccessors,
  readState,
  revokeAll,
  rootVault,
  runEmergencyToken,
  scenario,
  sinkHolds,
  tokenAlive,
  type Scenario,
} from './stack-fixture.ts';

/** Every secret seen so far: none may ever appear in a rotate/check run's output. */
const seen: Record<string, string> = {};
function expectNoSecrets(run: JobRun): void {
  expect(findPlantedSecrets(run.all, seen), 'a credential appeared in the output').toEqual([]);
}

async function rotateOk(s: Scenario, args: string[] = []): Promise<JobRun> {
  const run = await runEmergencyToken(s, args);
  expect(run.code, run.all).toBe(0);
  const record = await readState(s);
  noteAccessors(record);
  const held = await sinkHolds(s);
  if (held) seen[`launcher ${held.accessor}`] = held.secret;
  expectNoSecrets(run);
  return run;
}

const lookupSelf = z.looseObject({
  accessor: z.string(),
  policies: z.array(z.string()),
  renewable: z.boolean(),
  orphan: z.boolean(),
  ttl: z.number(),
  creation_time: z.number(),
  expire_time: z.string(),
});

/** Mints a 1h admin token from a launcher, exactly as the runbook's command does (auth/token/create/breakglass-admin). */
async function mintAdmin(launcher: string, ttl = '24h'): Promise<{ token: string; accessor: string }> {
  const c = await clientWith(launcher);
  try {
    const res = await c.call('auth/token/create/breakglass-admin', { method: 'POST', body: { ttl } });
    const auth = z.object({ auth: z.object({ client_token: z.string(), accessor: z.string() }) }).parse(res.body).auth;
    seen[`admin ${auth.accessor}`] = auth.client_token;
    return { token: auth.client_token, accessor: auth.accessor };
  } finally {
    c.close();
  }
}


beforeAll(async () => {
  await bootstrapEmergencyToken();
  buildBundle();
});

afterAll(async () => {
  await revokeAll();
});

describe('rotation of the launcher token (S3 envelope sink)', () => {
  const s = scenario('fresh');

  it('a fresh rotation creates a launcher, delivers it, proves it and records it (never the token)', async () => {
    const run = await rotateOk(s);
    expect(run.summary).toMatchObject({ action: 'rotated', kind: 'launcher', outcome: 'success' });
    expect(messages(run)).toEqual(
      expect.arrayContaining(['new credential created and recorded as pending', 'delivered', 'read back from the sink: fingerprints match', 'the new credential works', 'rotation recorded']),
    );
    const record = await readState(s);
    expect(record).toMatchObject({ kind: 'launcher', accessor: expect.any(String), fingerprint: expect.stringMatching(/^sha256:/), sink: expect.stringContaining(`s3://${readStack().aws.buckets.breakglass}/${s.s3Key}?versionId=`) });
    expect(record.pending).toBeUndefined();
    expect(Date.parse(record.expiresAt!)).toBeGreaterThan(Date.now() + 700 * 3600_000);

    const held = (await sinkHolds(s))!;
    expect(held.accessor).toBe(record.accessor);
    expect(fingerprint(held.secret)).toBe(record.fingerprint);
    expect(JSON.stringify(record)).not.toContain(held.secret);
    expect(await tokenAlive(record.accessor!)).toBe(true);
  });

  it('the launcher is an orphan, non-renewable, expires within 744h, and can do nothing but mint admin tokens', async () => {
    const held = (await sinkHolds(s))!;
    const c = await clientWith(held.secret);
    try {
      const self = lookupSelf.parse(await c.read('auth/token/lookup-self'));
      expect(self).toMatchObject({ orphan: true, renewable: false, accessor: held.accessor });
      // token_no_default_policy on the role: only the launcher policy.
      expect(self.policies).toEqual(['breakglass-launcher']);
      expect(Date.parse(self.expire_time) - self.creation_time * 1000).toBeLessThanOrEqual(744 * 3600_000 + 1000);
      for (const denied of [
        () => c.read('secret/data/vaultkeeper/emergency-token/state'),
        () => c.call('auth/token/create/breakglass-launcher', { method: 'POST', body: {} }),
        () => c.call('auth/token/create', { method: 'POST', body: { policies: ['breakglass-admin'] } }),
        () => c.readRaw('sys/policies/acl'),
      ]) {
        await expect(denied()).rejects.toSatisfy((e: unknown) => e instanceof VaultError && e.status === 403);
      }
    } finally {
      c.close();
    }
  });

  it('a 1h admin token minted from the launcher has the admin policy, cannot be renewed, and expires at most 1h after creation', async () => {
    const held = (await sinkHolds(s))!;
    const admin = await mintAdmin(held.secret, '24h'); // asks for more than the role allows
    const c = await clientWith(admin.token);
    try {
      const self = lookupSelf.parse(await c.read('auth/token/lookup-self'));
      expect(self.policies).toContain('breakglass-admin');
      expect(self.policies).not.toContain('root');
      expect(self.renewable).toBe(false);
      expect(self.orphan).toBe(false); // a child of the launcher: revoked with it
      expect(self.ttl).toBeLessThanOrEqual(3600);
      expect(Date.parse(self.expire_time) - self.creation_time * 1000).toBeLessThanOrEqual(3600_000 + 1000);
      await expect(c.write('auth/token/renew-self', {})).rejects.toSatisfy((e: unknown) => e instanceof VaultError && e.status === 400);
      // It is an admin: it can read what only an admin can.
      expect(await c.readRaw('sys/policies/acl/vaultkeeper-emergency-token')).toBeDefined();
    } finally {
      c.close();
    }
  });

  it('a second run inside the minimum age does nothing and says so', async () => {
    const before = await readState(s);
    const run = await rotateOk(s);
    expect(run.summary).toMatchObject({ outcome: 'skipped', action: 'skipped', accessor: before.accessor });
    expect(String(run.summary?.reason)).toMatch(/younger than the minimum age of 27 days/);
    expect((await readState(s)).version).toBe(before.version);
    expect(messages(run)).not.toContain('new credential created and recorded as pending');
  });

  it('a forced rotation revokes the old launcher and every 1h admin token minted from it', async () => {
    const old = (await sinkHolds(s))!;
    const admin = await mintAdmin(old.secret);
    const run = await rotateOk(s, ['--force']);
    expect(run.summary).toMatchObject({ action: 'rotated', reason: 'forced (--force)', previousAccessor: old.accessor, previousRevoked: 'revoked' });
    const record = await readState(s);
    expect(record.accessor).not.toBe(old.accessor);
    expect(await tokenAlive(old.accessor)).toBe(false);
    expect(await tokenAlive(admin.accessor)).toBe(false);
    expect(await tokenAlive(record.accessor!)).toBe(true);
    expect((await sinkHolds(s))!.accessor).toBe(record.accessor);
  });

  it('reveal refuses a pipe, and with --force shows exactly what was stored', async () => {
    const refused = await runEmergencyToken(s, ['reveal']);
    expect(refused.code).toBe(1);
    expect(refused.all).toMatch(/not a terminal/);
    expectNoSecrets(refused);

    const held = (await sinkHolds(s))!;
    const shown = await runEmergencyToken(s, ['reveal', '--force'], { auth: 'none' });
    expect(shown.code, shown.all).toBe(0);
    const printed = shown.stdout.split('\n').filter((l) => !l.startsWith('{'));
    expect(printed).toContain(`  ${held.secret}`);
    expect(shown.stdout).toContain(`fingerprint  ${(await readState(s)).fingerprint}`);
    // The log lines of that same run (the JSON ones) do not carry it.
    expect(findPlantedSecrets(shown.lines.map((l) => JSON.stringify(l)).join('\n'), { held: held.secret })).toEqual([]);
  });

  it('check passes for a fresh credential, and the watchdog fails loudly (exit 1 and a metric) within the warning window', async () => {
    const ok = await runEmergencyToken(s, ['check']);
    expect(ok.code, ok.all).toBe(0);
    expect(ok.summary).toMatchObject({ outcome: 'success', problems: [] });
    expectNoSecrets(ok);

    // Asking for 1000h (the role caps it at 744h) makes a 40-day window valid config.
    const window = { BREAKGLASS_EXPIRY_WARN: '40d', BREAKGLASS_TTL: '1000h' };
    const late = await runEmergencyToken(s, ['check'], { env: window });
    expect(late.code).toBe(1);
    expect(JSON.stringify(late.summary?.error)).toMatch(/expires in 3\d(\.\d+)? days/);
    const metrics = await (await fetch(`${readStack().pushgateway.url}/metrics`)).text();
    const line = metrics.split('\n').find((l) => l.startsWith('vaultkeeper_emergency_token_credential_expiring_soon{') && l.includes('job="vaultkeeper_emergency_token"'));
    expect(line, 'the watchdog gauge was pushed').toMatch(/ 1$/);

    // A rotate run with the same window rotates (the credential is due) and still fails: the role
    // caps a fresh one at 31 days, less than the 40 days asked, and the job says so instead of pretending.
    const rotated = await runEmergencyToken(s, [], { env: window });
    expect(rotated.code).toBe(1);
    expect(messages(rotated)).toContain('rotation recorded');
    noteAccessors(await readState(s));
    const held = (await sinkHolds(s))!;
    seen[`launcher ${held.accessor}`] = held.secret;
    expectNoSecrets(rotated);
  });
});

describe('failures keep a working credential', () => {
  it('a sink write failure leaves the old credential valid and the new one revoked', async () => {
    const s = scenario('sinkfail');
    await rotateOk(s);
    const old = await readState(s);
    // The KMS key for the data key is gone (a deleted or mistyped key): GenerateDataKey fails
    // inside the delivery, after the new launcher exists.
    const run = await runEmergencyToken(s, ['--force'], { env: { BREAKGLASS_KMS_KEY_ID: 'alias/vaultkeeper-no-such-key' } });
    expect(run.code).toBe(1);
    expectNoSecrets(run);
    const fresh = createdAccessor(run);
    expect(JSON.stringify(run.summary?.error)).toMatch(/delivery or proof .* failed: it was revoked and the previous one kept/);
    expect(messages(run)).toContain('new credential revoked after the failure');
    expect(await tokenAlive(fresh)).toBe(false);
    expect(await tokenAlive(old.accessor!)).toBe(true);
    const after = await readState(s);
    expect(after).toMatchObject({ accessor: old.accessor, fingerprint: old.fingerprint });
    expect(after.pending).toBeUndefined();
    expect((await sinkHolds(s))!.accessor).toBe(old.accessor);
  });

  it('an unversioned bucket is refused before anything is created', async () => {
    const s = scenario('unversioned');
    await rotateOk(s);
    const old = await readState(s);
    const { s3 } = awsClients();
    const bucket = `vk-et-unversioned-${s.id}`.toLowerCase().slice(0, 63);
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const run = await runEmergencyToken(s, ['--force'], { env: { BREAKGLASS_S3_BUCKET: bucket } });
      expect(run.code).toBe(1);
      expect(run.all).toMatch(/does not have versioning enabled/);
      expect(messages(run)).not.toContain('new credential created and recorded as pending');
      const after = await readState(s);
      expect(after.accessor).toBe(old.accessor);
      expect(after.pending).toBeUndefined();
      expect(await tokenAlive(old.accessor!)).toBe(true);
    } finally {
      await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
      s3.destroy();
    }
  });

  it('SIGTERM during delivery undoes the new credential and keeps the old one', async () => {
    const s = scenario('sigterm');
    await rotateOk(s);
    const old = await readState(s);
    const run = await runEmergencyToken(s, ['--force'], {
      bundle: true,
      onLine: (line, child) => {
        if (line.includes('new credential created and recorded as pending')) {
          // Freeze it right there, so that SIGTERM lands before the delivery, not after it.
          child.kill('SIGSTOP');
          child.kill('SIGTERM');
          child.kill('SIGCONT');
        }
      },
    });
    expect(run.code).toBe(1);
    expectNoSecrets(run);
    const fresh = createdAccessor(run);
    expect(messages(run)).toContain('new credential revoked after the failure');
    expect(await tokenAlive(fresh)).toBe(false);
    expect(await tokenAlive(old.accessor!)).toBe(true);
    const after = await readState(s);
    expect(after.accessor).toBe(old.accessor);
    expect(after.pending).toBeUndefined();
    expect((await sinkHolds(s))!.accessor).toBe(old.accessor);
    // The run still revoked its own login token on the way out.
    expect(messages(run)).toContain('login token revoked');
  });

  it('a crash after the create is cleaned up by the next run: the undelivered credential is revoked', async () => {
    const s = scenario('crash-created');
    await rotateOk(s);
    const old = await readState(s);
    const crashed = await runEmergencyToken(s, ['--force'], {
      bundle: true,
      onLine: (line, child) => {
        if (line.includes('new credential created and recorded as pending')) child.kill('SIGKILL');
      },
    });
    expect(crashed.signal).toBe('SIGKILL');
    const left = await readState(s);
    noteAccessors(left);
    expect(left.pending?.accessor).toBeDefined();
    expect(await tokenAlive(left.pending!.accessor!)).toBe(true); // the one extra live credential

    const next = await rotateOk(s);
    expect(String(next.summary?.recovered)).toBe(`revoked-pending:${left.pending!.accessor}`);
    expect(next.summary).toMatchObject({ action: 'skipped', accessor: old.accessor });
    expect(await tokenAlive(left.pending!.accessor!)).toBe(false);
    expect(await tokenAlive(old.accessor!)).toBe(true);
    const after = await readState(s);
    expect(after.pending).toBeUndefined();
    expect((await sinkHolds(s))!.accessor).toBe(old.accessor);
  });

  it('a crash after the delivery is finished by the next run: the delivered credential stays, the old one is revoked', async () => {
    const s = scenario('crash-delivered');
    await rotateOk(s);
    const old = await readState(s);
    const crashed = await runEmergencyToken(s, ['--force'], {
      bundle: true,
      onLine: (line, child) => {
        if (line.includes('"msg":"delivered"')) {
          child.kill('SIGSTOP');
          child.kill('SIGKILL');
        }
      },
    });
    expect(crashed.signal).toBe('SIGKILL');
    const left = await readState(s);
    noteAccessors(left);
    const pending = left.pending!.accessor!;
    expect((await sinkHolds(s))!.accessor).toBe(pending);
    expect(await tokenAlive(old.accessor!)).toBe(true);

    const next = await rotateOk(s);
    expect(String(next.summary?.recovered)).toBe(`finished-rotation:${pending}`);
    const after = await readState(s);
    expect(after.accessor).toBe(pending);
    expect(after.pending).toBeUndefined();
    expect(await tokenAlive(old.accessor!)).toBe(false);
    expect(await tokenAlive(pending)).toBe(true);
    expect((await sinkHolds(s))!.accessor).toBe(pending);
  });

  it('when the old credential cannot be revoked, the new one stays, the run fails naming the accessor, and the next run revokes it', async () => {
    const s = scenario('norevoke');
    await rotateOk(s);
    const old = await readState(s);
    const vault = await rootVault();
    const policy = readFileSync(join(POLICIES_DIR, 'emergency-token', 'policy.hcl'), 'utf8');
    // The job's own policy without revoke-accessor: the one change that makes only that step fail.
    const crippled = policy.replace(/path "auth\/token\/revoke-accessor" \{[^}]*\}/, '');
    expect(crippled).not.toContain('revoke-accessor');
    try {
      await vault.write('sys/policies/acl/vaultkeeper-emergency-token', { policy: crippled });
      const run = await runEmergencyToken(s, ['--force']);
      expect(run.code).toBe(1);
      expectNoSecrets(run);
      expect(JSON.stringify(run.summary?.error)).toContain(`previous credential with accessor ${old.accessor} could not be revoked`);
      const mid = await readState(s);
      noteAccessors(mid);
      expect(mid.accessor).not.toBe(old.accessor);
      expect(mid.unrevoked?.map((u) => u.accessor)).toEqual([old.accessor]);
      expect((await sinkHolds(s))!.accessor).toBe(mid.accessor);
      expect(await tokenAlive(old.accessor!)).toBe(true);
      const held = (await sinkHolds(s))!;
      seen[`launcher ${held.accessor}`] = held.secret;
    } finally {
      await vault.write('sys/policies/acl/vaultkeeper-emergency-token', { policy });
      vault.close();
    }
    const next = await rotateOk(s);
    expect(next.summary).toMatchObject({ action: 'skipped' });
    expect(next.summary?.unrevoked).toBeUndefined();
    expect(await tokenAlive(old.accessor!)).toBe(false);
    expect((await readState(s)).unrevoked).toBeUndefined();
  });

  it('two runs cannot interleave: a write against a stale version is refused (KV check-and-set)', async () => {
    const s = scenario('cas');
    const vault = await rootVault();
    const log = createLogger({ job: 'test', level: 'silent' });
    try {
      const a = new StateStore(vault, 'secret', s.statePath, 'run-a', log);
      const b = new StateStore(vault, 'secret', s.statePath, 'run-b', log);
      const first = await a.read();
      expect(first.version).toBe(0);
      const written = await a.write({ accessor: 'x' }, first.version);
      expect(written.version).toBe(1);
      await expect(b.write({ accessor: 'y' }, first.version)).rejects.toBeInstanceOf(ConcurrentRunError);
      expect((await b.read()).record.accessor).toBe('x');
      // The same run's write applied twice (a retried request) is recognised, not refused.
      const again = await a.write({ accessor: 'z' }, written.version);
      expect(again.version).toBe(2);
    } finally {
      await vault.delete(`secret/metadata/${s.statePath}`).catch(() => undefined);
      vault.close();
    }
  });
});
