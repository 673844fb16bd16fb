// Encrypt then Decrypt a random nonce through the unseal key, shaped exactly as Vault's awskms seal
// shapes them (go-kms-wrapping wrappers/awskms: Encrypt{KeyId, Plaintext: a 32-byte data key} with
// no encryption context; Decrypt{CiphertextBlob} with neither key id nor context). So the probe is
// refused exactly when an unseal would be, e.g. under an IAM or key-policy condition on
// kms:EncryptionContext* or on the request's key id, which a DescribeKey would not reveal.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { DecryptCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { failed, type CheckOutcome } from '../check.ts';
import { callSignal } from '../aws-clients.ts';
import { awsFailureOutcome } from '../classify-aws-error.ts';

export interface KmsRoundTripInput {
  kms: KMSClient;
  keyId: string;
  callTimeoutSeconds: number;
}

export async function checkKmsRoundTrip(input: KmsRoundTripInput, signal: AbortSignal): Promise<CheckOutcome> {
  // Never logged: a fresh random value that protects nothing, but the output must not look like a key leak.
  const nonce = randomBytes(32);
  const t0 = performance.now();
  let encrypted;
  try {
    encrypted = await input.kms.send(new EncryptCommand({ KeyId: input.keyId, Plaintext: nonce }), {
      abortSignal: callSignal(signal, input.callTimeoutSeconds),
    });
  } catch (err) {
    if (signal.aborted) throw err;
    return awsFailureOutcome(err, 'Encrypt');
  }
  const t1 = performance.now();
  if (!encrypted.CiphertextBlob?.length) return failed('other', 'Encrypt returned no ciphertext');
  let decrypted;
  try {
    decrypted = await input.kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob }), {
      abortSignal: callSignal(signal, input.callTimeoutSeconds),
    });
  } catch (err) {
    if (signal.aborted) throw err;
    return awsFailureOutcome(err, 'Decrypt');
  }
  const t2 = performance.now();
  const encryptMs = Math.round(t1 - t0);
  const decryptMs = Math.round(t2 - t1);
  const details = { encryptMs, decryptMs, keyArn: encrypted.KeyId, decryptKeyArn: decrypted.KeyId };
  const plain = decrypted.Plaintext ? Buffer.from(decrypted.Plaintext) : Buffer.alloc(0);
  if (plain.length !== nonce.length || !timingSafeEqual(plain, nonce)) {
    return failed('other', 'Decrypt returned different bytes than were encrypted', { details });
  }
  if (encrypted.KeyId && decrypted.KeyId && encrypted.KeyId !== decrypted.KeyId) {
    return failed('other', `decrypted by ${decrypted.KeyId}, encrypted by ${encrypted.KeyId}`, { details });
  }
  return { status: 'ok', summary: `encrypt ${encryptMs} ms, decrypt ${decryptMs} ms`, details };
}
