// A run that finds a pending change in the record finishes it before anything else. The rule is
// the one that keeps logins working whatever step the earlier run stopped at: Vault must hold
// the secret Authentik holds now. Authentik holds
// - the pending secret: the earlier run got past the PATCH; writing it into Vault completes it;
// - the secret from before: the earlier run stopped before the PATCH or put it back; Vault is
//   given that one again (it should have it already; the write makes sure), the change is over;
// - anything else: someone changed it meanwhile; Vault gets that one, as sync would.
import { JobFailure, type JobResult } from '@vaultkeeper/runtime';
import { ConfigWriteError, completeChange, errorDetail, writeSecretToVault } from './apply-to-vault.ts';
import { fingerprint } from './fingerprint.ts';
import { claimRecord, fp, type RunContext } from './run-context.ts';
import type { RecordSnapshot, RotationRecord } from './rotation-record.ts';

export type PendingOutcome = 'completed' | 'abandoned' | 'superseded';

export function classifyPending(pending: NonNullable<RotationRecord['pending']>, authentikSecret: string): PendingOutcome {
  if (authentikSecret === pending.secret) return 'completed';
  if (pending.authentikBefore && authentikSecret === pending.authentikBefore.secret) return 'abandoned';
  return 'superseded';
}

export async function recoverPending(
  rc: RunContext,
  snap: RecordSnapshot & { data: RotationRecord & { pending: NonNullable<RotationRecord['pending']> } },
): Promise<{ outcome: PendingOutcome; result: JobResult; skipped?: boolean }> {
  const pending = snap.data.pending;
  const secret = rc.provider.client_secret;
  const outcome = classifyPending(pending, secret);
  const authentikFp = fingerprint(snap.data.fingerprintKey, secret);
  rc.summary.pending = { mode: pending.mode, startedAt: pending.startedAt, outcome };
  rc.log.warn(
    { mode: pending.mode, startedAt: pending.startedAt, pending: fp(pending.fingerprint), authentik: fp(authentikFp), outcome },
    {
      completed: `a ${pending.mode} left pending by an earlier run reached Authentik; completing it by writing that secret into Vault`,
      abandoned: `a ${pending.mode} left pending by an earlier run never reached Authentik (or was put back); making sure Vault holds the secret Authentik has`,
      superseded: `a ${pending.mode} was left pending by an earlier run, and Authentik has since been given another secret; writing that one into Vault`,
    }[outcome],
  );
  if (rc.dryRun) return { outcome, result: { ...rc.summary, plan: 'recover', changed: false } };

  const claimed = await claimRecord(rc, snap, snap.data);
  if ('skipped' in claimed) return { outcome, result: claimed.skipped, skipped: true };
  let configBefore;
  try {
    rc.store.assertHeld(rc.callSeconds.vault);
    configBefore = await writeSecretToVault(rc, secret);
  } catch (err) {
    rc.metrics.observe(claimed.data, false);
    throw new JobFailure('could not finish the pending change: the OIDC config write failed', {
      cause: errorDetail(err),
      refused: err instanceof ConfigWriteError && err.refused,
      authentik: `secret ${fp(authentikFp)}`,
      record: `pending ${fp(pending.fingerprint)}`,
      next: 'the next run tries again',
    });
  }
  const result = await completeChange(rc, claimed, secret, 'recover', configBefore);
  return { outcome, result };
}
