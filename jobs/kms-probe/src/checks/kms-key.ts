// Is the key Vault unseals with still a key Vault can unseal with?
//
// DescribeKey answers for a disabled or pending-deletion key too: Vault's awskms seal only calls
// DescribeKey at start-up (go-kms-wrapping awskms SetConfig), so such a Vault starts and then
// stays sealed. Only a failing DescribeKey (credentials, network, no such key) stops the process.
// That is why the key's state is checked here and the round trip is a separate check.
import { DescribeKeyCommand, GetKeyRotationStatusCommand, type KeyMetadata, type KMSClient } from '@aws-sdk/client-kms';
import { failed, type CheckOutcome } from '../check.ts';
import { callSignal } from '../aws-clients.ts';
import { classifyAwsError } from '../classify-aws-error.ts';

export interface KmsKeyCheckInput {
  kms: KMSClient;
  keyId: string;
  expectedKeyArn: string | undefined;
  /** The region the operator configured; the key's ARN must name it. */
  region: string | undefined;
  callTimeoutSeconds: number;
  /** Imported key material expiring sooner than this is a warning. */
  materialExpiryWarningSeconds?: number;
}

const STATE_REASON: Record<string, string> = {
  Disabled: 'disabled',
  PendingDeletion: 'pending deletion',
  PendingImport: 'pending import: no key material',
  PendingReplicaDeletion: 'pending replica deletion',
  Unavailable: 'unavailable: its custom key store is disconnected',
  Creating: 'still being created',
  Updating: 'being updated',
};

export async function checkKmsKey(input: KmsKeyCheckInput, signal: AbortSignal): Promise<CheckOutcome> {
  const described = await input.kms.send(new DescribeKeyCommand({ KeyId: input.keyId }), {
    abortSignal: callSignal(signal, input.callTimeoutSeconds),
  });
  const meta = described.KeyMetadata;
  if (!meta?.Arn) return failed('other', 'DescribeKey returned no key metadata');
  const verdict = judgeKeyMetadata(meta, input);
  if (verdict.status === 'fail') return verdict;

  // Optional: a denied or unsupported rotation lookup is a warning, never a failure.
  const rotation = await rotationStatus(input, meta, signal);
  const notes = [...(verdict.notes ?? []), ...(rotation.note ? [rotation.note] : [])];
  return {
    status: notes.length ? 'warn' : 'ok',
    summary: `${verdict.summary}, rotation ${rotation.text}`,
    ...(notes.length ? { notes } : {}),
    details: { ...verdict.details, rotation: rotation.text },
  };
}

/** The verdict on DescribeKey's answer alone (pure: unit-tested with every state). */
export function judgeKeyMetadata(meta: KeyMetadata, input: Pick<KmsKeyCheckInput, 'expectedKeyArn' | 'region' | 'materialExpiryWarningSeconds'>, now = Date.now()): CheckOutcome {
  const arn = meta.Arn ?? '';
  const arnRegion = arn.split(':')[3] ?? '';
  const details: Record<string, unknown> = {
    keyArn: arn,
    keyState: meta.KeyState,
    keySpec: meta.KeySpec,
    keyUsage: meta.KeyUsage,
    origin: meta.Origin,
    ...(meta.DeletionDate ? { deletionDate: meta.DeletionDate.toISOString() } : {}),
    ...(meta.ValidTo ? { materialValidTo: meta.ValidTo.toISOString() } : {}),
  };
  if (meta.KeyState !== 'Enabled') {
    let reason = STATE_REASON[meta.KeyState ?? ''] ?? `state ${meta.KeyState ?? 'unknown'}`;
    if (meta.KeyState === 'PendingDeletion' && meta.DeletionDate) reason += `, deleted on ${meta.DeletionDate.toISOString()} unless cancelled`;
    return failed('key-unusable', reason, { details });
  }
  // The awskms seal calls Encrypt/Decrypt with the default algorithm: only a symmetric
  // encryption key can serve (KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT).
  if (meta.KeyUsage !== 'ENCRYPT_DECRYPT' || (meta.KeySpec ?? meta.CustomerMasterKeySpec) !== 'SYMMETRIC_DEFAULT') {
    return failed('key-unusable', `not a symmetric encrypt/decrypt key (${meta.KeySpec ?? '?'}, ${meta.KeyUsage ?? '?'})`, { details });
  }
  if (input.expectedKeyArn && arn !== input.expectedKeyArn) {
    return failed('other', `${arn} is not the expected key ${input.expectedKeyArn} (alias re-pointed?)`, { details });
  }
  if (input.region && arnRegion && arnRegion !== input.region) {
    return failed('other', `key is in ${arnRegion}, configured region is ${input.region}`, { details });
  }
  const notes: string[] = [];
  if (meta.ValidTo) {
    const left = meta.ValidTo.getTime() - now;
    if (left < (input.materialExpiryWarningSeconds ?? 30 * 86_400) * 1000) {
      notes.push(`imported key material expires ${meta.ValidTo.toISOString()}: re-import it or the key becomes unusable`);
    }
  }
  return {
    status: notes.length ? 'warn' : 'ok',
    summary: `enabled, symmetric, ${arnRegion || 'region ?'}`,
    ...(notes.length ? { notes } : {}),
    details,
  };
}

async function rotationStatus(input: KmsKeyCheckInput, meta: KeyMetadata, signal: AbortSignal): Promise<{ text: string; note?: string }> {
  // Imported material and custom key stores cannot rotate automatically: nothing to ask.
  if (meta.Origin && meta.Origin !== 'AWS_KMS') return { text: 'n/a' };
  try {
    const res = await input.kms.send(new GetKeyRotationStatusCommand({ KeyId: meta.KeyId ?? meta.Arn }), {
      abortSignal: callSignal(signal, input.callTimeoutSeconds),
    });
    return { text: res.KeyRotationEnabled ? 'on' : 'off' };
  } catch (err) {
    if (signal.aborted) throw err;
    const f = classifyAwsError(err);
    if (f.code === 'UnsupportedOperationException') return { text: 'n/a' };
    if (f.class === 'denied') return { text: 'unknown', note: 'rotation status not readable (kms:GetKeyRotationStatus not granted)' };
    return { text: 'unknown', note: `rotation status not readable: ${f.reason}` };
  }
}
