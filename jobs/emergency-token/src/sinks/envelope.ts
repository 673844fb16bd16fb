import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { z } from '@vaultkeeper/runtime';

export const ENVELOPE_FORMAT = 'vaultkeeper.emergency-token.envelope/v1';

/**
 * What is written to S3: the credential encrypted client-side with AES-256-GCM under a KMS data key,
 * the data key encrypted by KMS (only KMS Decrypt with the same encryption context opens it), and
 * the public facts in the clear so that a person can tell which credential an object holds without
 * decrypting it. Every clear field is bound into the GCM tag as additional authenticated data: a
 * header swapped onto another ciphertext fails to decrypt.
 */
export const envelope = z.object({
  format: z.literal(ENVELOPE_FORMAT),
  algorithm: z.literal('AES-256-GCM'),
  kmsKeyId: z.string(),
  encryptionContext: z.record(z.string(), z.string()),
  encryptedDataKey: z.string(),
  iv: z.string(),
  kind: z.string(),
  accessor: z.string(),
  fingerprint: z.string(),
  createdAt: z.string(),
  expiresAt: z.string(),
  ciphertext: z.string(),
  tag: z.string(),
});
export type Envelope = z.infer<typeof envelope>;
export type EnvelopeHeader = Omit<Envelope, 'ciphertext' | 'tag' | 'iv' | 'format' | 'algorithm'>;

export interface DataKey {
  /** 32 bytes from KMS GenerateDataKey; the caller zeroes it after use. */
  plaintext: Uint8Array;
}

const IV_BYTES = 12; // NIST SP 800-38D: 96-bit IVs for GCM
const TAG_BYTES = 16;

/** Additional authenticated data: the clear fields in a fixed order, so the same header gives the same bytes. */
function aad(e: Omit<Envelope, 'ciphertext' | 'tag'>): Buffer {
  const context = Object.fromEntries(Object.entries(e.encryptionContext).sort(([a], [b]) => a.localeCompare(b)));
  return Buffer.from(
    JSON.stringify([e.format, e.algorithm, e.kmsKeyId, context, e.encryptedDataKey, e.iv, e.kind, e.accessor, e.fingerprint, e.createdAt, e.expiresAt]),
    'utf8',
  );
}

export function sealEnvelope(plaintext: Buffer, key: DataKey, header: EnvelopeHeader): Envelope {
  if (key.plaintext.length !== 32) throw new Error('the data key must be 32 bytes (AES-256)');
  const iv = randomBytes(IV_BYTES);
  const head = { format: ENVELOPE_FORMAT, algorithm: 'AES-256-GCM', ...header, iv: iv.toString('base64') } as const;
  const cipher = createCipheriv('aes-256-gcm', key.plaintext, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(head));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ...head, ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

/** Throws when the key is wrong or anything (ciphertext, tag or a clear field) was changed. */
export function openEnvelope(e: Envelope, key: DataKey): Buffer {
  // A fixed tag length: otherwise a shortened tag would be accepted and checked on fewer bits.
  const decipher = createDecipheriv('aes-256-gcm', key.plaintext, Buffer.from(e.iv, 'base64'), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad(e));
  decipher.setAuthTag(Buffer.from(e.tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(e.ciphertext, 'base64')), decipher.final()]);
}

export function parseEnvelope(text: string): Envelope {
  return envelope.parse(JSON.parse(text));
}
