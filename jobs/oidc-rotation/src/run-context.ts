// What every step of a run needs, gathered once by job.ts after the preflight passed.
import type { AuthentikClient, OAuth2Provider } from '@vaultkeeper/authentik';
import { JobFailure, type JobResult, type Logger } from '@vaultkeeper/runtime';
import type { VaultClient } from '@vaultkeeper/vault';
import type { RotationConfig } from './config.ts';
import { shortFingerprint } from './fingerprint.ts';
import type { RotationMetrics } from './rotation-metrics.ts';
import { RecordBusyError, type RecordSnapshot, type RotationRecord, type RotationRecordStore } from './rotation-record.ts';

export interface RunContext {
  log: Logger;
  signal: AbortSignal;
  dryRun: boolean;
  cfg: RotationConfig;
  vault: VaultClient;
  authentik: AuthentikClient;
  store: RotationRecordStore;
  metrics: RotationMetrics;
  mount: string;
  /** The provider as read at the start of the run (its client_secret is Authentik's current one). */
  provider: OAuth2Provider;
  application: string;
  loginCheck: { role: string; redirectUri: string };
  /** The claim's lease (config.ts leaseSeconds). */
  leaseSeconds: number;
  /** The longest one Authentik call and one Vault call can take (config.ts callBoundSeconds): what assertHeld needs left. */
  callSeconds: { authentik: number; vault: number };
  /** Facts for the summary line, filled in as the run goes. */
  summary: Record<string, unknown>;
}

/**
 * Claims the record with `body` in one check-and-set write. When another run is at work: a run
 * that found a pending change fails (it cannot finish it: logins may be failing, and that must
 * alert, naming who holds the claim since when); a run that found nothing pending skips.
 */
export async function claimRecord(
  rc: RunContext,
  snap: RecordSnapshot,
  body: Omit<RotationRecord, 'writeId' | 'lock'>,
): Promise<{ version: number; data: RotationRecord } | { skipped: JobResult }> {
  try {
    return await rc.store.acquire(snap.data ? { ...snap, data: { ...snap.data, ...body } } : snap, body, rc.leaseSeconds);
  } catch (err) {
    if (!(err instanceof RecordBusyError)) throw err;
    const pending = snap.data?.pending;
    if (pending) {
      // Lost a check-and-set race: the record as it is now tells who holds it.
      const lock = err.lock ?? (await rc.store.read().catch(() => undefined))?.data?.lock ?? undefined;
      rc.metrics.observe(snap.data, false);
      throw new JobFailure(
        `the ${pending.mode} pending in ${rc.store.displayPath} since ${pending.startedAt} cannot be finished now: ${
          lock ? `another run (${lock.holder}) holds the claim since ${lock.acquiredAt}, its lease renewed until ${lock.expiresAt}` : 'another run changed the record meanwhile'
        }`,
        {
          record: rc.store.displayPath,
          pending: { mode: pending.mode, startedAt: pending.startedAt, runId: pending.runId },
          ...(lock ? { holder: lock.holder, since: lock.acquiredAt, until: lock.expiresAt } : {}),
          next: lock
            ? `if that run is gone, its lease lapses once it was not renewed for ${lock.leaseSeconds ?? rc.leaseSeconds}s on Vault's clock (about ${lock.expiresAt} on the holder's), and the next run takes over and finishes the change`
            : 'the next run finishes the change',
        },
      );
    }
    rc.log.warn({ record: rc.store.displayPath, holder: err.lock?.holder, until: err.lock?.expiresAt }, `${err.message}; skipping this run`);
    return { skipped: { outcome: 'skipped', reason: err.message, ...rc.summary } };
  }
}

export function fp(s: string | undefined | null): string {
  return shortFingerprint(s);
}
