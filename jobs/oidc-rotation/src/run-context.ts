// What every step of a run needs, gathered once by job.ts after the preflight passed.
import type { AuthentikClient, OAuth2Provider } from '@vaultkeeper/authentik';
import type { JobResult, Logger } from '@vaultkeeper/runtime';
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
  /** Facts for the summary line, filled in as the run goes. */
  summary: Record<string, unknown>;
}

/** Claims the record with `body` in one check-and-set write, or says the run must skip. */
export async function claimRecord(
  rc: RunContext,
  snap: RecordSnapshot,
  body: Omit<RotationRecord, 'writeId' | 'lock'>,
): Promise<{ version: number; data: RotationRecord } | { skipped: JobResult }> {
  try {
    return await rc.store.acquire(snap.data ? { version: snap.version, data: { ...snap.data, ...body } } : snap, body, rc.cfg.record.lockTtlSeconds);
  } catch (err) {
    if (!(err instanceof RecordBusyError)) throw err;
    rc.log.warn({ record: rc.store.displayPath, holder: err.holder, until: err.expiresAt }, `${err.message}; skipping this run`);
    return { skipped: { outcome: 'skipped', reason: err.message, ...rc.summary } };
  }
}

export function fp(s: string | undefined | null): string {
  return shortFingerprint(s);
}
