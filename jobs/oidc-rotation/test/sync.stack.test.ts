// sync against the real stack: Authentik (the stand-in) is the source of truth; the job runs as
// its own process with a service-account token and its production policy (for this test's mount).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditCursor, authentikSecret, createTestbed, destroyTestbed, leakedSecrets, login, readConfig, readRecord, rotateInAuthentikUi, runRotationJob, type Testbed } from './testbed.ts';

let tb: Testbed;
beforeEach(async () => {
  tb = await createTestbed();
});
afterEach(() => destroyTestbed(tb));

const job = (args: string[]) => runRotationJob(tb, args);

describe('sync', () => {
  it('adopts the secret on its first run, then changes nothing on the second (no write to Vault at all)', async () => {
    const secret = await authentikSecret(tb.providerPk);
    const first = await job(['sync']);
    expect(first.code, first.all).toBe(0);
    expect(first.summary).toMatchObject({ outcome: 'success', changed: true, mode: 'sync' });
    const rec = await readRecord(tb);
    expect(rec?.data.current?.secret).toBe(secret);
    expect(rec?.data.pending).toBeNull();
    expect(rec?.data.lock).toBeNull();

    const config = await readConfig(tb);
    const audit = auditCursor();
    const second = await job(['sync']);
    expect(second.code, second.all).toBe(0);
    expect(second.summary).toMatchObject({ outcome: 'success', changed: false });
    const mine = audit.requests().filter((r) => r.path.startsWith(`auth/${tb.mount}/`) || r.path.includes(tb.recordPath));
    expect(mine.map((r) => `${r.operation} ${r.path}`), 'the audit log sees the run').toContain(`read auth/${tb.mount}/config`);
    const writes = mine.filter((r) => r.operation !== 'read');
    expect(writes, 'no create/update/delete on the OIDC mount or the record').toEqual([]);
    expect((await readRecord(tb))?.version).toBe(rec?.version);
    expect(await readConfig(tb)).toEqual(config);
    expect(leakedSecrets(first, { secret })).toEqual([]);
    expect(leakedSecrets(second, { secret })).toEqual([]);
  });

  it('writes a secret rotated in Authentik into Vault, so people can log in again', async () => {
    const adopt = await job(['sync']);
    expect(adopt.code, adopt.all).toBe(0);
    expect((await login(tb)).ok).toBe(true);
    const before = await readConfig(tb);

    const old = await authentikSecret(tb.providerPk);
    const rotated = await rotateInAuthentikUi(tb.providerPk);
    const broken = await login(tb);
    expect(broken.ok, 'Vault still holds the old secret: the code exchange fails').toBe(false);

    const run = await job(['sync']);
    expect(run.code, run.all).toBe(0);
    expect(run.summary).toMatchObject({ changed: true, verify: { configReadBack: true, fieldsUnchanged: true, authUrl: true, authentikAcceptsSecret: true } });
    expect((await login(tb)).ok).toBe(true);
    const rec = await readRecord(tb);
    expect(rec?.data.current?.secret).toBe(rotated);
    expect(rec?.data.previous?.secret).toBe(old);
    const { status: _a, ...b } = before;
    const { status: _b, ...a } = await readConfig(tb);
    expect(a).toEqual(b);
    expect(leakedSecrets(run, { old, rotated })).toEqual([]);
  });

  it('warns when the secret keeps changing outside the job (a blueprint or Terraform undoing rotations)', async () => {
    expect((await job(['sync'])).code).toBe(0);
    const rotate = await job(['rotate']);
    expect(rotate.code, rotate.all).toBe(0);
    const before = (await readRecord(tb))!.data.previous!.secret;
    // "Terraform" puts the secret back to the one it manages.
    await rotateInAuthentikUi(tb.providerPk, before);
    const run = await job(['sync']);
    expect(run.code, run.all).toBe(0);
    const warnings = run.lines.filter((l) => l.level === 'warn').map((l) => String(l.msg));
    expect(warnings.some((m) => m.includes('went back to the one before the last rotation'))).toBe(true);

    await rotateInAuthentikUi(tb.providerPk);
    const again = await job(['sync']);
    expect(again.code, again.all).toBe(0);
    expect(again.lines.some((l) => l.level === 'warn' && String(l.msg).includes('keeps changing outside this job'))).toBe(true);
    expect(again.summary?.externalChanges).toBe(2);
  });
});
