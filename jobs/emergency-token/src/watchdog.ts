import type { JobMetrics } from '@vaultkeeper/runtime';
import type { CredentialStatus } from './credential.ts';
import type { StateRecord } from './state-record.ts';

export interface WatchdogVerdict {
  ok: boolean;
  /** Why not ok, for the operator. */
  problem?: string;
  expiresAt?: string;
  expiresInDays?: number;
}

/**
 * The credential must be alive and must not expire within `warnSeconds`. Missed runs are the usual
 * cause (a suspended CronJob, a broken image): the credential then quietly runs out, and the day it
 * is needed it is dead. `status` is what Vault says; without it (dry runs) the record is trusted.
 */
export function judgeExpiry(record: StateRecord, status: CredentialStatus | undefined, warnSeconds: number, now = Date.now()): WatchdogVerdict {
  if (!record.accessor || !record.expiresAt) return { ok: false, problem: 'there is no break-glass credential yet' };
  if (status && !status.alive) return { ok: false, problem: `the recorded break-glass credential (accessor ${record.accessor}) is no longer valid in Vault`, expiresAt: record.expiresAt };
  const expiresAt = status?.alive ? status.expiresAt : record.expiresAt;
  const left = Date.parse(expiresAt) - now;
  const expiresInDays = Math.round((left / 86_400_000) * 100) / 100;
  if (left <= warnSeconds * 1000) {
    return { ok: false, problem: `the break-glass credential expires in ${expiresInDays} days (at ${expiresAt}); rotation is overdue`, expiresAt, expiresInDays };
  }
  return { ok: true, expiresAt, expiresInDays };
}

/** The watchdog's gauges: alert on `expiring_soon == 1` or on `expiry_timestamp_seconds - time()`. */
export function recordExpiryMetrics(metrics: JobMetrics, record: StateRecord, verdict: WatchdogVerdict): void {
  const expiry = metrics.gauge('credential_expiry_timestamp_seconds', 'Unix time the current break-glass credential expires.');
  const created = metrics.gauge('credential_created_timestamp_seconds', 'Unix time the current break-glass credential was created.');
  const soon = metrics.gauge('credential_expiring_soon', '1 when the break-glass credential is missing, invalid or expires within the warning window.');
  const unrevoked = metrics.gauge('unrevoked_credentials', 'Replaced break-glass credentials whose revocation failed and is still to be retried.');
  if (verdict.expiresAt) expiry.set(Date.parse(verdict.expiresAt) / 1000);
  if (record.createdAt) created.set(Date.parse(record.createdAt) / 1000);
  soon.set(verdict.ok ? 0 : 1);
  unrevoked.set(record.unrevoked?.length ?? 0);
}
