// "Never half-done", against the real stack: Authentik refusing the PATCH, Vault refusing the
// config write after the PATCH (rolled back), the rollback failing too, and the job killed
// between the two writes; each time the next run (or nothing) leaves both sides in agreement.
//
// Vault's config write fails for real here: OpenBao fetches the discovery document while it
// handles the write (pathConfigWrite -> createProvider) and refuses the write with 400 when that
// fails, so a failure injected into the stand-in's discovery endpoint makes the real write fail.
// A config read does not fetch it once the active node has the mount's key set cached, so the
// tests warm that cache (a read) just before injecting, and the injected failure meets exactly
// the job's write. (A leader change in between, by another test on the shared stack, would cool
// the cache; the assertion message says so.)
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  authentikAccepts,
  authentikSecret,
  createTestbed,
  destroyTestbed,
  injectFailure,
  leakedSecrets,
  login,
  pushedGauge,
  readConfig,
  readRecord,
  runRotationJob,
  signalJob,
  type Testbed,
  waitForLapse,
} from './testbed.ts';

/**
 * The shortest lease the config allows (3 × (1 s + 1 s + 2 s + 2 s)) for the killed runs, so
 * that the test does not wait the default 570 s for it to lapse.
 */
const SHORT_LEASE = { AUTHENTIK_CALL_DEADLINE: '1s', AUTHENTIK_REQUEST_TIMEOUT: '1s', VAULT_CALL_DEADLINE: '2s', VAULT_REQUEST_TIMEOUT: '2s', OIDC_ROTATION_LOCK_TTL: '18s' };

let tb: Testbed;
let adopted: string;
beforeEach(async () => {
  tb = await createTestbed();
  const sync = await runRotationJob(tb, ['sync']);
  expect(sync.code, sync.all).toBe(0);
  adopted = await authentikSecret(tb.providerPk);
});
afterEach(() => destroyTestbed(tb));

const discovery = () => `/application/o/${tb.slug}/.well-known/openid-configuration`;
/** Injects a discovery failure that Vault's next config write will meet (see the top comment). */
async function failVaultsNextConfigWrite(rule: { status: number; delayMs?: number }): Promise<void> {
  await readConfig(tb);
  await injectFailure({ method: 'GET', path: discovery(), times: 1, ...rule });
}
const COLD_CACHE = 'exit 0: the injected discovery failure was met before the config write (a leader change cooled the key-set cache?)';
const providerPath = () => `/api/v3/providers/oauth2/${tb.providerPk}/`;
// The run's own failure: the last error line (earlier ones narrate the steps).
const failureLine = (run: { lines: Array<Record<string, unknown>> }) => run.lines.findLast((l) => l.level === 'error');

describe('never half-done', () => {
  it('Authentik refusing the PATCH: nothing changes anywhere', async () => {
    const configBefore = await readConfig(tb);
    const recordBefore = await readRecord(tb);
    await injectFailure({ method: 'PATCH', path: providerPath(), status: 403, times: 1, body: { detail: 'You do not have permission to perform this action.' } });

    const run = await runRotationJob(tb, ['rotate']);
    expect(run.code, run.all).toBe(1);
    expect(failureLine(run)?.msg).toMatch(/Authentik refused the new client secret; nothing was changed/);
    expect(await authentikSecret(tb.providerPk)).toBe(adopted);
    expect(await readConfig(tb)).toEqual(configBefore);
    const rec = await readRecord(tb);
    expect(rec?.data).toMatchObject({ current: { secret: adopted }, pending: null, lock: null });
    expect(rec?.data.current).toEqual(recordBefore?.data.current);
    expect((await login(tb)).ok).toBe(true);
    expect(leakedSecrets(run, { adopted })).toEqual([]);
  });

  it('Vault refusing the config write after the PATCH: Authentik is put back, exit 1', async () => {
    await failVaultsNextConfigWrite({ status: 503 });
    let newSecret: string | undefined;
    const run = await runRotationJob(tb, ['rotate'], {
      onLine: (line) => {
        // Catch the new secret on Authentik's side as it is set (for the leak check below).
        if (line.includes('Authentik holds the new secret')) void authentikSecret(tb.providerPk).then((s) => (newSecret = s));
      },
    });
    expect(run.code, run.code === 0 ? COLD_CACHE : run.all).toBe(1);
    const failure = failureLine(run);
    expect(failure?.msg).toBe('Vault refused the new OIDC config; Authentik was put back to the previous secret: nothing changed');
    // The runtime logs a JobFailure's details.cause as the cause of its `err`.
    expect((failure?.err as { cause?: unknown } | undefined)?.cause).toMatchObject({ type: 'VaultError', status: 400 });
    expect(await authentikSecret(tb.providerPk)).toBe(adopted);
    const rec = await readRecord(tb);
    expect(rec?.data).toMatchObject({ current: { secret: adopted }, pending: null, lock: null });
    expect((await login(tb)).ok).toBe(true);
    expect(newSecret && newSecret !== adopted).toBeTruthy();
    expect(leakedSecrets(run, { adopted, newSecret })).toEqual([]);
  });

  it('the rollback failing too: says which side holds which secret, and the next run completes the rotation', async () => {
    // Vault's discovery fetch is slowed, so the test can make Authentik refuse the rollback
    // PATCH after the job's first PATCH went through.
    await failVaultsNextConfigWrite({ status: 503, delayMs: 1500 });
    let injected: Promise<void> | undefined;
    const run = await runRotationJob(tb, ['rotate'], {
      onLine: (line) => {
        if (line.includes('Authentik holds the new secret') && !injected) {
          injected = injectFailure({ method: 'PATCH', path: providerPath(), status: 403, times: 1 });
        }
      },
    });
    await injected;
    expect(run.code, run.code === 0 ? COLD_CACHE : run.all).toBe(1);
    const failure = failureLine(run)!;
    expect(failure.msg).toMatch(/putting the previous secret back on Authentik failed too/);
    const rec = await readRecord(tb);
    const pending = rec!.data.pending!;
    expect(pending).toMatchObject({ mode: 'rotate' });
    expect(await authentikSecret(tb.providerPk)).toBe(pending.secret);
    // Which side holds which secret, by fingerprint, never the secret.
    expect(failure.authentik).toMatch(/^new secret \([0-9a-f]{12}\)$/);
    expect(failure.vaultConfig).toMatch(/^previous secret \([0-9a-f]{12}\)$/);
    expect(String(failure.next)).toMatch(/next run/);
    expect(rec!.data.lock, 'the failed run released its claim').toBeNull();
    expect((await login(tb)).ok, 'Vault still has the old secret: logins fail until the next run').toBe(false);

    const next = await runRotationJob(tb, ['sync']);
    expect(next.code, next.all).toBe(0);
    expect(next.summary).toMatchObject({ changed: true, pending: { mode: 'rotate', outcome: 'completed' } });
    const after = await readRecord(tb);
    expect(after?.data).toMatchObject({ pending: null, lock: null, current: { secret: pending.secret }, previous: { secret: adopted } });
    expect((await login(tb)).ok).toBe(true);
    expect(leakedSecrets(run, { adopted, pending: pending.secret })).toEqual([]);
    expect(leakedSecrets(next, { adopted, pending: pending.secret })).toEqual([]);
  });

  it('killed before the PATCH landed: the next rotate drops the stale pending entry and rotates afresh', async () => {
    // The PATCH hangs (and is then dropped unanswered, changing nothing), so the kill lands
    // after the write-ahead and before Authentik took anything.
    await injectFailure({ method: 'PATCH', path: providerPath(), status: 0, times: 1, delayMs: 3000 });
    const run = await runRotationJob(tb, ['rotate'], {
      env: SHORT_LEASE,
      onLine: (line, child) => {
        if (line.includes('new secret stored in the rotation record')) signalJob(child, 'SIGKILL');
      },
    });
    expect(run.summary, 'killed: no finished line').toBeUndefined();
    const rec = await readRecord(tb);
    const stale = rec!.data.pending!.secret;
    expect(await authentikSecret(tb.providerPk)).toBe(adopted);
    expect((await login(tb)).ok, 'nothing changed on either side').toBe(true);

    await waitForLapse(tb);
    const next = await runRotationJob(tb, ['rotate']);
    expect(next.code, next.all).toBe(0);
    expect(next.summary).toMatchObject({ changed: true, recovered: true, pending: { mode: 'rotate', outcome: 'abandoned' } });
    const fresh = await authentikSecret(tb.providerPk);
    expect(fresh).not.toBe(adopted);
    expect(fresh).not.toBe(stale);
    expect((await readRecord(tb))?.data).toMatchObject({ pending: null, lock: null, current: { secret: fresh }, previous: { secret: adopted } });
    expect((await login(tb)).ok).toBe(true);
    expect(leakedSecrets(next, { adopted, stale, fresh })).toEqual([]);
  });

  it('killed between the Authentik PATCH and the Vault write: the next run finishes the rotation', async () => {
    // Vault's write hangs on the discovery fetch (dropped after 4 s), so the kill lands while
    // Authentik already has the new secret and Vault does not.
    await failVaultsNextConfigWrite({ status: 0, delayMs: 4000 });
    const run = await runRotationJob(tb, ['rotate'], {
      env: SHORT_LEASE,
      onLine: (line, child) => {
        if (line.includes('Authentik holds the new secret')) signalJob(child, 'SIGKILL');
      },
    });
    expect(run.signal ?? run.code).not.toBe(0);
    expect(run.summary, 'killed: no finished line').toBeUndefined();

    const rec = await readRecord(tb);
    const pending = rec!.data.pending!;
    expect(pending.mode).toBe('rotate');
    expect(await authentikSecret(tb.providerPk)).toBe(pending.secret);
    expect(rec!.data.lock, 'a killed run cannot release its claim').not.toBeNull();
    expect((await login(tb)).ok, 'between the two writes nobody can log in').toBe(false);
    expect(await authentikAccepts(tb, adopted)).toBe(false);

    // While the dead run's lease has not lapsed, a run cannot finish the pending change: that is
    // a failure (people cannot log in), never a skip, and it says who holds the claim since when.
    const successBefore = await pushedGauge('last_success_timestamp_seconds');
    const early = await runRotationJob(tb, ['sync']);
    expect(early.code, early.all).toBe(1);
    expect(early.summary?.outcome).toBe('failure');
    const stuck = failureLine(early)!;
    expect(stuck.msg).toMatch(/pending .* cannot be finished/);
    expect(stuck).toMatchObject({ holder: rec!.data.lock!.holder, since: expect.any(String), pending: { mode: 'rotate' } });
    expect(await pushedGauge('pending_change'), 'pending_change pushed to the Pushgateway').toBe(1);
    expect(await pushedGauge('last_run_outcome', 'outcome="failure"')).toBe(1);
    expect(await pushedGauge('last_success_timestamp_seconds'), 'a stuck run is no success').toBe(successBefore);

    // The dead run renews its lease no more: once it lapsed, the next run takes over at once.
    await waitForLapse(tb);
    const next = await runRotationJob(tb, ['rotate']);
    expect(next.code, next.all).toBe(0);
    expect(next.summary).toMatchObject({ changed: true, pending: { mode: 'rotate', outcome: 'completed' } });
    const after = await readRecord(tb);
    expect(after?.data).toMatchObject({ pending: null, lock: null, current: { secret: pending.secret } });
    expect(await authentikSecret(tb.providerPk)).toBe(pending.secret);
    expect((await login(tb)).ok).toBe(true);
    expect(await pushedGauge('pending_change')).toBe(0);
    expect(await pushedGauge('last_success_timestamp_seconds')).toBeGreaterThan(successBefore ?? 0);
    expect(leakedSecrets(run, { adopted, pending: pending.secret })).toEqual([]);
    expect(leakedSecrets(early, { adopted, pending: pending.secret })).toEqual([]);
    expect(leakedSecrets(next, { adopted, pending: pending.secret })).toEqual([]);
  });
});
