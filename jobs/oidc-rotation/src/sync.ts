// sync: Authentik is the source of truth (someone rotated the secret in its UI, or its own
// automation did). When Authentik's secret differs from the one Vault was given (compared by
// fingerprint: Vault never returns the secret), it is stored in the record (pending), written
// into Vault, checked and marked current. When it does not differ nothing is written at all.
import { JobFailure, type JobResult } from '@vaultkeeper/runtime';
import { ConfigWriteError, completeChange, errorDetail, writeSecretToVault } from './apply-to-vault.ts';
import { fingerprint, newFingerprintKey, sameFingerprint } from './fingerprint.ts';
import { isAlphanumeric } from './generate-secret.ts';
import { baseRecord } from './rotate.ts';
import { claimRecord, fp, type RunContext } from './run-context.ts';
import { held, pruneChanges, type RecordSnapshot } from './rotation-record.ts';

export async function sync(rc: RunContext, snap: RecordSnapshot): Promise<JobResult> {
  const now = new Date();
  const record = snap.data;
  const key = record?.fingerprintKey ?? newFingerprintKey();
  const authentik = held(key, rc.provider.client_secret, fingerprint, now);

  if (record?.current && !record.pending && sameFingerprint(record.current.fingerprint, authentik.fingerprint)) {
    rc.metrics.observe(record, false);
    rc.log.info({ fingerprint: fp(authentik.fingerprint) }, 'Vault already holds the secret Authentik has; nothing to do');
    return { ...rc.summary, changed: false, fingerprint: fp(authentik.fingerprint) };
  }

  if (!isAlphanumeric(authentik.secret)) {
    rc.log.warn('the client secret in Authentik has characters other than letters and digits; some clients encode those differently in HTTP Basic, which has broken logins before');
  }
  let externalChanges = record?.externalChanges ?? [];
  if (record?.current) {
    externalChanges = pruneChanges(externalChanges, rc.cfg.churn.windowSeconds, now, now);
    const reverted = record.lastChange?.mode === 'rotate' && record.previous && sameFingerprint(record.previous.fingerprint, authentik.fingerprint);
    if (reverted) {
      rc.log.warn(
        { fingerprint: fp(authentik.fingerprint), rotatedAt: record.lastChange?.at },
        "Authentik's client secret went back to the one before the last rotation: an Authentik blueprint or a Terraform resource that manages client_secret undoes every rotation; take client_secret out of it",
      );
    }
    if (externalChanges.length >= rc.cfg.churn.threshold) {
      rc.log.warn(
        { changes: externalChanges.length, windowSeconds: rc.cfg.churn.windowSeconds },
        "Authentik's client secret keeps changing outside this job: if an Authentik blueprint or a Terraform resource manages client_secret, it will undo every rotation",
      );
    }
    rc.summary.externalChanges = externalChanges.length;
  }
  rc.log.info(
    { authentik: fp(authentik.fingerprint), vault: fp(record?.current?.fingerprint), firstRun: !record?.current },
    record?.current ? "Authentik's client secret differs from the one Vault was given" : 'no secret recorded yet: giving Vault the one Authentik has',
  );

  if (rc.dryRun) return { ...rc.summary, plan: 'sync', changed: false };

  const claimed = await claimRecord(rc, snap, {
    ...baseRecord(rc, key, record),
    externalChanges,
    pending: { mode: 'sync', secret: authentik.secret, fingerprint: authentik.fingerprint, authentikBefore: null, startedAt: now.toISOString(), runId: rc.store.runId },
  });
  if ('skipped' in claimed) return claimed.skipped;

  let configBefore;
  try {
    rc.store.assertHeld(rc.callSeconds.vault);
    configBefore = await writeSecretToVault(rc, authentik.secret);
  } catch (err) {
    rc.metrics.observe(claimed.data, false);
    const refused = err instanceof ConfigWriteError && err.refused;
    // Nothing to put back: Authentik was not touched, and it stays the source of truth.
    throw new JobFailure(refused ? "Vault refused the OIDC config write; it keeps its previous secret" : "Vault's answer to the OIDC config write is unknown", {
      cause: errorDetail(err),
      authentik: `current secret (${fp(authentik.fingerprint)})`,
      vaultConfig: refused ? `previous secret (${fp(record?.current?.fingerprint)})` : 'previous or new: unknown',
      record: `pending ${fp(authentik.fingerprint)}`,
      next: "the next run writes Authentik's secret into Vault again",
    });
  }
  return completeChange(rc, claimed, authentik.secret, 'sync', configBefore);
}
