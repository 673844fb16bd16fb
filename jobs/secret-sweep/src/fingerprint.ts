import { hash, randomBytes } from 'node:crypto';

/**
 * Compares secret values without keeping them: each value becomes SHA-256 over a key drawn at
 * random for this run (never written anywhere) followed by the value. A plain hash of a
 * password is a dictionary attack away from the password; a keyed one is useless outside this
 * process, and a fingerprint is never logged or exported anyway, only compared in memory.
 *
 * Key-prefix SHA-256 rather than HMAC: nobody forges fingerprints here (length extension does
 * not matter), and the one-shot crypto.hash avoids an Hmac object per value, which made the
 * sweep of 20,000 Secrets three times slower in this spot.
 */
export class Fingerprinter {
  private readonly keyText: string;
  private readonly keyBytes: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.keyText = key.toString('base64');
    this.keyBytes = Buffer.from(this.keyText, 'utf8');
  }

  /** A text and its UTF-8 bytes have the same fingerprint. */
  of(value: Uint8Array | string): string {
    return typeof value === 'string'
      ? hash('sha256', this.keyText + value, 'base64')
      : hash('sha256', Buffer.concat([this.keyBytes, value]), 'base64');
  }
}

/**
 * The fingerprints under which a Kubernetes Secret value (bytes) can sit in Vault: as the same
 * bytes (a text value stored as a KV string), or as the standard base64 of the bytes, which is
 * how binary values (keystores, DER keys) are usually put into a KV string.
 */
export function secretValueFingerprints(fp: Fingerprinter, bytes: Buffer): string[] {
  return [fp.of(bytes), fp.of(bytes.toString('base64'))];
}
