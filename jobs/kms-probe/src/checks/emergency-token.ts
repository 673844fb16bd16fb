// Is the break-glass launcher token that the emergency-token job keeps about to expire? Reads only
// the `expiresAt` field of that job's KV v2 record, never the token (the record holds none).
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { z } from '@vaultkeeper/runtime';
import { failed, type CheckOutcome } from '../check.ts';
import { formatDuration } from '../format-duration.ts';

const recordSchema = z.object({ data: z.looseObject({ expiresAt: z.string() }) });

export interface EmergencyTokenInput {
  client: VaultClient;
  statePath: string;
  minRemainingSeconds: number;
  callTimeoutSeconds: number;
}

export async function checkEmergencyToken(input: EmergencyTokenInput, signal: AbortSignal, now = Date.now()): Promise<CheckOutcome> {
  let record;
  try {
    record = await input.client.read(input.statePath, recordSchema, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(input.callTimeoutSeconds * 1000)]),
      deadlineSeconds: input.callTimeoutSeconds,
    });
  } catch (err) {
    if (err instanceof VaultError && err.status === 404) {
      return failed('stale', `no record at ${input.statePath} (has the emergency-token job run?)`);
    }
    throw err;
  }
  return judgeExpiry(record.data.expiresAt, input.minRemainingSeconds, now);
}

export function judgeExpiry(expiresAt: string, minRemainingSeconds: number, now = Date.now()): CheckOutcome {
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return failed('other', 'expiresAt is not an ISO 8601 time');
  const remaining = (at - now) / 1000;
  const details = { expiresAt: new Date(at).toISOString(), remainingSeconds: Math.round(remaining) };
  if (remaining <= 0) return failed('stale', `break-glass token expired ${formatDuration(-remaining)} ago`, { details });
  if (remaining < minRemainingSeconds) {
    return failed('stale', `break-glass token expires in ${formatDuration(remaining)} (wanted at least ${formatDuration(minRemainingSeconds)})`, { details });
  }
  return { status: 'ok', summary: `expires in ${formatDuration(remaining)}`, details };
}
