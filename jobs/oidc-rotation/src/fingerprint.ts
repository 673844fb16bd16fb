import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Fingerprints let the job say which secret each side holds, in logs and in the record, without
 * the secret itself. An HMAC keyed with a random key kept in the (Vault-protected) rotation
 * record, not a plain hash: sync takes whatever secret Authentik holds, and a hand-typed one
 * would be a dictionary attack away from its plain SHA-256.
 */
export function newFingerprintKey(): string {
  return randomBytes(32).toString('base64');
}

export function fingerprint(key: string, secret: string): string {
  return createHmac('sha256', Buffer.from(key, 'base64')).update(secret, 'utf8').digest('hex');
}

/** The 12 hex characters shown to people: enough to tell secrets apart at a glance. */
export function shortFingerprint(fp: string | undefined | null): string {
  return fp ? fp.slice(0, 12) : 'none';
}

export function sameFingerprint(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'hex');
  const bb = Buffer.from(b, 'hex');
  return ab.length === bb.length && ab.length > 0 && timingSafeEqual(ab, bb);
}
