import { randomBytes } from 'node:crypto';

/**
 * Authentik's own default for a new provider's client_secret (authentik.lib.generators
 * generate_key: 128 characters of ascii letters and digits). Letters and digits only on purpose:
 * the secret travels in HTTP Basic and form bodies, and punctuation that one side encodes and the
 * other does not has broken Vault logins before.
 */
export const SECRET_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const SECRET_LENGTH = 128;

/** 62 * 4 = 248: bytes from 248 up are rejected so that every character is equally likely. */
const REJECT_FROM = 256 - (256 % SECRET_ALPHABET.length);

/** A new client secret from the OS CSPRNG, unbiased (rejection sampling, not `byte % 62`). */
export function generateClientSecret(length = SECRET_LENGTH): string {
  const out: string[] = [];
  while (out.length < length) {
    for (const byte of randomBytes(length + 16)) {
      if (byte >= REJECT_FROM) continue;
      out.push(SECRET_ALPHABET[byte % SECRET_ALPHABET.length]!);
      if (out.length === length) break;
    }
  }
  return out.join('');
}

/** Whether a secret sticks to letters and digits (sync warns about one that does not). */
export function isAlphanumeric(secret: string): boolean {
  return /^[A-Za-z0-9]+$/.test(secret);
}
