// rotate: the job makes the new secret. Order (never half-done):
//   1. the new secret is stored in the record, marked pending (write-ahead, with the claim);
//   2. Vault's OIDC config is read and checked, so that 4 follows 3 at once;
//   3. Authentik's provider gets it (PATCH of client_secret alone);
//   4. Vault's OIDC config gets it (every other field written back as read);
//   5. checks, then the record marks it current.
// A failure up to 3 changes nothing; at 4, Authentik is put back. Whatever cannot be put back
// is left pending in the record, and the next run finishes it (recover.ts).
import { JobFailure, registerSecret, type JobResult } from '@vaultkeeper/runtime';
import { ConfigWriteError, completeChange, errorDetail, readConfigForWrite, writeConfig } from './apply-to-vault.ts';
import { fingerprint, newFingerprintKey, sameFingerprint } from './fingerprint.ts';
import { generateClientSecret } from './generate-secret.ts';
import { claimRecord, fp, type RunContext } from './run-context.ts';
import { held, pruneChanges, withoutPending, type RecordSnapshot, type RotationRecord } from './rotation-record.ts';

export async function rotate(rc: RunContext, snap: RecordSnapshot): Promise<JobResult> {
  const now = new Date();
  const record = snap.data;
  const key = record?.fingerprintKey ?? newFingerprintKey();
  const authentikBefore = held(key, rc.provider.client_secret, fingerprint, now);
  let externalChanges = record?.externalChanges ?? [];
  if (record?.current && !sameFingerprint(record.current.fingerprint, authentikBefore.fingerprint)) {
    // Vault's config (per the record) and Authentik already disagree: logins fail right now.
    // The rotation fixes that, but it is worth knowing that something else changed the secret.
    externalChanges = pruneChanges(externalChanges, rc.cfg.churn.windowSeconds, now, now);
    rc.log.warn(
      { authentik: fp(authentikBefore.fingerprint), vault: fp(record.current.fingerprint) },
      "Authentik's client secret was changed outside this job since Vault was given one; rotating replaces both",
    );
  }

  if (rc.dryRun) {
    rc.log.info({ provider: rc.provider.pk, mount: rc.mount }, 'dry run: would store a new secret (pending), set it on Authentik, write it into Vault, verify');
    return { ...rc.summary, plan: 'rotate', changed: false };
  }

  const secret = generateClientSecret();
  registerSecret(secret);
  const pendingFp = fingerprint(key, secret);
  const claimed = await claimRecord(rc, snap, {
    ...baseRecord(rc, key, record),
    externalChanges,
    pending: { mode: 'rotate', secret, fingerprint: pendingFp, authentikBefore, startedAt: now.toISOString(), runId: rc.store.runId },
  });
  if ('skipped' in claimed) return claimed.skipped;
  let state = claimed;
  rc.summary.pendingFingerprint = fp(pendingFp);
  rc.log.info({ record: rc.store.displayPath, fingerprint: fp(pendingFp) }, 'new secret stored in the rotation record (pending); setting it on Authentik');

  // 2. From the PATCH until the config write lands, logins fail: read and check the config now.
  let configBefore;
  try {
    configBefore = await readConfigForWrite(rc);
  } catch (err) {
    state = await rc.store.writeHeld(withoutPending(state.data));
    rc.metrics.observe(state.data, false);
    throw new JobFailure("Vault's OIDC config cannot take the new secret; nothing was changed", { cause: errorDetail(err) });
  }

  // 3. Authentik
  rc.store.assertHeld(rc.callSeconds.authentik);
  try {
    await rc.authentik.setProviderClientSecret(rc.provider.pk, secret);
  } catch (err) {
    // The PATCH may have landed even so (an answer lost on the way back): ask what Authentik holds.
    const afterPatch = await rc.authentik.getProvider(rc.provider.pk).catch(() => undefined);
    if (afterPatch?.client_secret !== secret) {
      if (afterPatch?.client_secret === authentikBefore.secret) {
        state = await rc.store.writeHeld(withoutPending(state.data));
        rc.metrics.observe(state.data, false);
        throw new JobFailure('Authentik refused the new client secret; nothing was changed: Authentik and Vault keep the current one', {
          cause: errorDetail(err),
          authentik: `current secret (${fp(authentikBefore.fingerprint)})`,
          vaultConfig: 'untouched',
        });
      }
      rc.metrics.observe(state.data, false);
      throw new JobFailure("setting the new secret on Authentik failed and what Authentik holds now is unknown; Vault's config was not touched", {
        cause: errorDetail(err),
        authentik: 'unknown (could not be read back)',
        vaultConfig: `untouched (${fp(record?.current?.fingerprint)})`,
        record: `${rc.store.displayPath}: pending ${fp(pendingFp)}`,
        next: 'the next run writes whatever secret Authentik holds into Vault',
      });
    }
    rc.log.warn({ err }, 'Authentik answered the PATCH with an error, but it holds the new secret');
  }
  rc.log.info({ provider: rc.provider.pk, fingerprint: fp(pendingFp) }, 'Authentik holds the new secret; writing it into Vault');

  // 4. Vault
  try {
    // A lease that could lapse during the write would let another run finish (and even rotate
    // again) under it, and this late write would then put an older secret into Vault.
    rc.store.assertHeld(rc.callSeconds.vault);
  } catch (err) {
    rc.metrics.observe(state.data, false);
    throw new JobFailure("this run's claim on the rotation record may lapse before a Vault write ends; Authentik holds the new secret, Vault's config was not touched", {
      cause: errorDetail(err),
      authentik: `new secret (${fp(pendingFp)})`,
      vaultConfig: `untouched (${fp(record?.current?.fingerprint)})`,
      record: `pending ${fp(pendingFp)}`,
      next: `the next run writes the new secret into Vault from ${rc.store.displayPath} and completes the rotation`,
    });
  }
  try {
    await writeConfig(rc, configBefore, secret);
  } catch (err) {
    throw await afterFailedVaultWrite(rc, state, err, authentikBefore, pendingFp, record);
  }
  // From the line before to this one, logins fail (Authentik and Vault disagree): the bench measures it.
  rc.log.info({ mount: rc.mount, fingerprint: fp(pendingFp) }, "Vault's OIDC config holds the new secret; checking");

  // 5.
  return completeChange(rc, state, secret, 'rotate', configBefore);
}

/** The Vault write failed after Authentik took the new secret: put Authentik back if that is safe. */
async function afterFailedVaultWrite(
  rc: RunContext,
  state: { version: number; data: RotationRecord },
  err: unknown,
  authentikBefore: { secret: string; fingerprint: string },
  pendingFp: string,
  record: RotationRecord | undefined,
): Promise<JobFailure> {
  const vaultHolds = record?.current ? fp(record.current.fingerprint) : 'the secret it had';
  const next = `the next run writes the new secret into Vault from ${rc.store.displayPath} and completes the rotation`;
  if (!(err instanceof ConfigWriteError && err.refused)) {
    // The write may have landed: putting the old secret back on Authentik could break the very
    // login it is meant to save. Leave both as they are; Authentik's secret is in the record.
    rc.metrics.observe(state.data, false);
    return new JobFailure("Vault's answer to the OIDC config write is unknown; Authentik holds the new secret", {
      cause: errorDetail(err),
      authentik: `new secret (${fp(pendingFp)})`,
      vaultConfig: `new (${fp(pendingFp)}) or previous (${vaultHolds}): unknown`,
      record: `pending ${fp(pendingFp)}`,
      next,
    });
  }
  rc.log.error({ cause: errorDetail(err) }, 'Vault refused the new OIDC config; putting the previous secret back on Authentik');
  try {
    // Without the lease for a whole call, another run may already be writing Authentik's new
    // secret into Vault: putting the old one back under it would break logins again.
    rc.store.assertHeld(rc.callSeconds.authentik);
    await rc.authentik.setProviderClientSecret(rc.provider.pk, authentikBefore.secret);
  } catch (rollbackErr) {
    rc.metrics.observe(state.data, false);
    return new JobFailure('Vault refused the new OIDC config, and putting the previous secret back on Authentik failed too: logins fail until the next run', {
      cause: errorDetail(err),
      rollbackCause: errorDetail(rollbackErr),
      authentik: `new secret (${fp(pendingFp)})`,
      vaultConfig: `previous secret (${vaultHolds})`,
      record: `pending ${fp(pendingFp)}, previous ${fp(authentikBefore.fingerprint)}`,
      next,
    });
  }
  const done = await rc.store.writeHeld(withoutPending(state.data));
  rc.metrics.observe(done.data, false);
  return new JobFailure('Vault refused the new OIDC config; Authentik was put back to the previous secret: nothing changed', {
    cause: errorDetail(err),
    authentik: `previous secret (${fp(authentikBefore.fingerprint)})`,
    vaultConfig: `previous secret (${vaultHolds}), untouched`,
  });
}

/** The record's fixed fields for this provider (kept from the record when there is one). */
export function baseRecord(rc: RunContext, key: string, record: RotationRecord | undefined): Omit<RotationRecord, 'writeId' | 'lock' | 'pending'> {
  return {
    schema: 1,
    mount: rc.mount,
    clientId: rc.provider.client_id,
    providerPk: rc.provider.pk,
    application: rc.application,
    fingerprintKey: key,
    current: record?.current ?? null,
    previous: record?.previous ?? null,
    lastChange: record?.lastChange ?? null,
    externalChanges: record?.externalChanges ?? [],
  };
}
