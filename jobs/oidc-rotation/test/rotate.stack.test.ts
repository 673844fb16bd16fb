// rotate end to end against the real stack, with a whole OIDC login through Vault before and
// after, every other field of the config unchanged, and two runs that must not interleave.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { readStack } from '../../../test/stack/stack.ts';
import {
  auditCursor,
  authentikAccepts,
  authentikSecret,
  createTestbed,
  destroyTestbed,
  leakedSecrets,
  login,
  readConfig,
  readRecord,
  runRotationJob,
  signalJob,
  standin,
  type Testbed,
} from './testbed.ts';

let tb: Testbed | undefined;
afterEach(() => destroyTestbed(tb));

describe('rotate', () => {
  it('sets a new secret on Authentik and in Vault; the record agrees with Authentik, logins work, nothing else in the config changed', async () => {
    // Every field set to something other than its default, so a dropped field shows.
    tb = await createTestbed({
      extraConfig: {
        jwt_supported_algs: ['RS256', 'ES256'],
        namespace_in_state: false,
        override_allowed_server_names: ['auth.example.test'],
        oidc_discovery_ca_pem: readFileSync(readStack().kube.caFile, 'utf8'),
        provider_config: { provider: 'azure' },
      },
    });
    const before = await readConfig(tb);
    const oldSecret = await authentikSecret(tb.providerPk);
    const loginBefore = await login(tb);
    expect(loginBefore.ok, 'login before the rotation').toBe(true);

    const run = await runRotationJob(tb, ['rotate']);
    expect(run.code, run.all).toBe(0);
    expect(run.summary).toMatchObject({ outcome: 'success', mode: 'rotate', changed: true });
    expect(run.summary?.verify).toEqual({ configReadBack: true, fieldsUnchanged: true, authUrl: true, authentikAcceptsSecret: true });

    const newSecret = await authentikSecret(tb.providerPk);
    expect(newSecret).not.toBe(oldSecret);
    expect(newSecret).toMatch(/^[A-Za-z0-9]{128}$/);
    const rec = await readRecord(tb);
    expect(rec?.data.current?.secret).toBe(newSecret);
    expect(rec?.data.previous?.secret).toBe(oldSecret);
    expect(rec?.data).toMatchObject({ pending: null, lock: null, lastChange: { mode: 'rotate' } });
    expect(await authentikAccepts(tb, newSecret)).toBe(true);
    expect(await authentikAccepts(tb, oldSecret)).toBe(false);

    // The PATCH carried client_secret and nothing else (the stand-in records body keys, never values).
    const { body: log } = await standin<{ requests: Array<{ method: string; path: string; bodyKeys?: string[] }> }>('GET', '/_standin/requests');
    const patches = log.requests.filter((r) => r.method === 'PATCH' && r.path === `/api/v3/providers/oauth2/${tb!.providerPk}/`);
    expect(patches.map((r) => r.bodyKeys)).toEqual([['client_secret']]);

    const loginAfter = await login(tb);
    expect(loginAfter.ok, `login after the rotation: ${'error' in loginAfter ? loginAfter.error.message : ''}`).toBe(true);

    const { status: _s1, ...b } = before;
    const { status: _s2, ...a } = await readConfig(tb);
    expect(a).toEqual(b);
    expect(leakedSecrets(run, { oldSecret, newSecret })).toEqual([]);
  });

  it('--dry-run says what it would do and changes nothing anywhere', async () => {
    tb = await createTestbed();
    const secret = await authentikSecret(tb.providerPk);
    const audit = auditCursor();
    const run = await runRotationJob(tb, ['rotate', '--dry-run']);
    expect(run.code, run.all).toBe(0);
    expect(run.summary).toMatchObject({ dryRun: true, plan: 'rotate', changed: false });
    expect(await authentikSecret(tb.providerPk)).toBe(secret);
    expect(await readRecord(tb)).toBeUndefined();
    expect(audit.requests().filter((r) => r.operation !== 'read' && (r.path.startsWith(`auth/${tb!.mount}/`) || r.path.includes(tb!.recordPath)))).toEqual([]);
    expect(leakedSecrets(run, { secret })).toEqual([]);
  });

  it('lets only one of two simultaneous runs change anything; the other cannot finish the pending change and fails, naming the holder', async () => {
    tb = await createTestbed();
    const bed = tb;
    let second: Awaited<ReturnType<typeof runRotationJob>> | undefined;
    // Run A is frozen right after it claimed the record; run B starts while A holds it.
    const first = await runRotationJob(bed, ['rotate'], {
      onLine: (line, child) => {
        if (!line.includes('new secret stored in the rotation record') || second) return;
        signalJob(child, 'SIGSTOP');
        second = {} as never;
        void runRotationJob(bed, ['rotate'])
          .then((run) => (second = run))
          .finally(() => signalJob(child, 'SIGCONT'));
      },
    });
    expect(first.code, first.all).toBe(0);
    expect(first.summary).toMatchObject({ outcome: 'success', changed: true });
    // B found A's pending rotation and a claim whose lease has not lapsed: it cannot finish it.
    expect(second?.code, second?.all).toBe(1);
    expect(second?.summary).toMatchObject({ outcome: 'failure' });
    expect(JSON.stringify(second?.summary?.error)).toMatch(/holds the claim since/);
    const rec = await readRecord(bed);
    expect(rec?.data.current?.secret).toBe(await authentikSecret(bed.providerPk));
    expect((await login(bed)).ok).toBe(true);
  });

  // Renewals keeping a live claim are shown on the record store itself (lease.stack.test.ts),
  // driven by the record's versions: a whole run cannot outlast its lease by design any more.
  it('refuses a lease too short for its calls before touching anything (exit 2, naming the field)', async () => {
    tb = await createTestbed();
    const secret = await authentikSecret(tb.providerPk);
    const run = await runRotationJob(tb, ['rotate'], { env: { OIDC_ROTATION_LOCK_TTL: '60s' } });
    expect(run.code, run.all).toBe(2);
    expect(run.all).toMatch(/record\.lockTtlSeconds.*at least 570s/);
    expect(await authentikSecret(tb.providerPk)).toBe(secret);
    expect(await readRecord(tb)).toBeUndefined();
  });
});

describe('preflight', () => {
  it('refuses a provider without signing key, changing nothing', async () => {
    tb = await createTestbed({ signingKey: false });
    const secret = await authentikSecret(tb.providerPk);
    const run = await runRotationJob(tb, ['rotate']);
    expect(run.code, run.all).toBe(1);
    const problems = run.lines.find((l) => String(l.msg).startsWith('refusing to rotate'))?.problems as string[];
    expect(problems.some((p) => p.includes('no signing key'))).toBe(true);
    expect(await authentikSecret(tb.providerPk)).toBe(secret);
    expect(await readRecord(tb)).toBeUndefined();
  });

  it('refuses a public client and a provider of another application, naming every problem', async () => {
    tb = await createTestbed({ clientType: 'public' });
    const run = await runRotationJob(tb, ['rotate'], { env: { OIDC_ROTATION_APPLICATION: 'vault' } });
    expect(run.code, run.all).toBe(1);
    const problems = run.lines.find((l) => String(l.msg).startsWith('refusing to rotate'))?.problems as string[];
    // The shared application "vault" has its own provider, which is not the one Vault's config here uses.
    expect(problems.join('\n')).toMatch(/another client_id/);
    const own = await runRotationJob(tb, ['sync']);
    expect(own.code, own.all).toBe(1);
    const ownProblems = own.lines.find((l) => String(l.msg).startsWith('refusing to sync'))?.problems as string[];
    expect(ownProblems.join('\n')).toMatch(/public client/);
    expect(await readRecord(tb)).toBeUndefined();
  });
});
