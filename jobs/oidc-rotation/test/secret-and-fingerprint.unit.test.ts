import { describe, expect, it } from 'vitest';
import { fingerprint, newFingerprintKey, sameFingerprint, shortFingerprint } from '../src/fingerprint.ts';
import { SECRET_ALPHABET, generateClientSecret, isAlphanumeric } from '../src/generate-secret.ts';

describe('generateClientSecret', () => {
  it('makes 128 letters and digits, like Authentik does by default', () => {
    const s = generateClientSecret();
    expect(s).toHaveLength(128);
    expect(s).toMatch(/^[A-Za-z0-9]{128}$/);
    expect(isAlphanumeric(s)).toBe(true);
  });

  it('never repeats itself', () => {
    const seen = new Set(Array.from({ length: 500 }, () => generateClientSecret()));
    expect(seen.size).toBe(500);
  });

  it('uses every character about equally often (no modulo bias)', () => {
    const counts = new Map<string, number>();
    const n = 2000;
    for (let i = 0; i < n; i++) for (const c of generateClientSecret()) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(SECRET_ALPHABET.length);
    const expected = (n * 128) / SECRET_ALPHABET.length;
    // A `byte % 62` generator would give the first 8 characters ~25% more hits; allow ±8%.
    for (const c of SECRET_ALPHABET) expect(Math.abs(counts.get(c)! - expected) / expected).toBeLessThan(0.08);
  });

  it('tells punctuation apart', () => {
    expect(isAlphanumeric('abc:def')).toBe(false);
    expect(isAlphanumeric('abc%2F')).toBe(false);
    expect(isAlphanumeric('')).toBe(false);
  });
});

describe('fingerprint', () => {
  it('is stable under one key and different under another', () => {
    const key = newFingerprintKey();
    const s = generateClientSecret();
    expect(fingerprint(key, s)).toBe(fingerprint(key, s));
    expect(fingerprint(key, s)).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint(newFingerprintKey(), s)).not.toBe(fingerprint(key, s));
    expect(fingerprint(key, s + 'x')).not.toBe(fingerprint(key, s));
  });

  it('never contains the secret and shows only 12 characters to people', () => {
    const key = newFingerprintKey();
    const fp = fingerprint(key, 'hunter2hunter2');
    expect(fp).not.toContain('hunter2');
    expect(shortFingerprint(fp)).toHaveLength(12);
    expect(shortFingerprint(undefined)).toBe('none');
  });

  it('compares in constant time and rejects empty or malformed values', () => {
    const key = newFingerprintKey();
    const a = fingerprint(key, 'one-secret');
    expect(sameFingerprint(a, a)).toBe(true);
    expect(sameFingerprint(a, fingerprint(key, 'other-secret'))).toBe(false);
    expect(sameFingerprint('', '')).toBe(false);
    expect(sameFingerprint(a, a.slice(0, 10))).toBe(false);
  });
});
