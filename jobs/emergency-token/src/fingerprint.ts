import { createHash, timingSafeEqual } from 'node:crypto';

// Domain separation: the same token hashed by another tool for another purpose gives another
// value, so a fingerprint seen in our KV record cannot be matched against someone else's table.
const DOMAIN = 'vaultkeeper/emergency-token/fingerprint/v1\n';

/**
 * What we record and compare instead of the credential: SHA-256 of the secret, prefixed with the
 * algorithm. A Vault token or AppRole secret ID has well over 128 bits of randomness, so the hash
 * cannot be reversed by guessing; it only tells two copies apart.
 */
export function fingerprint(secret: string): string {
  return 'sha256:' + createHash('sha256').update(DOMAIN).update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of two fingerprints (they are not secret, but it costs nothing). */
export function sameFingerprint(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
