import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fingerprint, sameFingerprint } from '../src/fingerprint.ts';
import { openEnvelope, parseEnvelope, sealEnvelope, type EnvelopeHeader } from '../src/sinks/envelope.ts';
import { envelopeOwner } from '../src/sinks/s3-envelope.ts';

const header: EnvelopeHeader = {
  kmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/test',
  encryptionContext: { purpose: 'vaultkeeper-breakglass', cluster: 'c1' },
  encryptedDataKey: Buffer.from('wrapped').toString('base64'),
  kind: 'launcher',
  accessor: 'acc-1',
  fingerprint: 'sha256:00',
  createdAt: '2026-01-01T00:00:00.000Z',
  expiresAt: '2026-02-01T00:00:00.000Z',
};

describe('fingerprint', () => {
  it('is stable, prefixed, and does not contain the secret', () => {
    const secret = 's.' + randomBytes(18).toString('base64url');
    const f = fingerprint(secret);
    expect(f).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(fingerprint(secret)).toBe(f);
    expect(f).not.toContain(secret);
    expect(fingerprint(secret + 'x')).not.toBe(f);
  });

  it('is domain-separated from a plain SHA-256 of the secret', async () => {
    const { createHash } = await import('node:crypto');
    expect(fingerprint('abc')).not.toBe('sha256:' + createHash('sha256').update('abc').digest('hex'));
  });

  it('compares', () => {
    expect(sameFingerprint(fingerprint('a'), fingerprint('a'))).toBe(true);
    expect(sameFingerprint(fingerprint('a'), fingerprint('b'))).toBe(false);
    expect(sameFingerprint('sha256:1', 'sha256:12')).toBe(false);
  });
});

describe('envelope (AES-256-GCM under a data key)', () => {
  const key = { plaintext: randomBytes(32) };
  const plaintext = Buffer.from(JSON.stringify({ secret: 's.abcdefghijklmnopqrstuvwx' }));

  it('round-trips and keeps the secret out of the clear fields', () => {
    const e = sealEnvelope(plaintext, key, header);
    const text = JSON.stringify(e);
    expect(text).not.toContain('abcdefghijklmnopqrstuvwx');
    expect(openEnvelope(parseEnvelope(text), key).equals(plaintext)).toBe(true);
    expect(Buffer.from(e.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(e.tag, 'base64')).toHaveLength(16);
  });

  it('uses a fresh IV every time', () => {
    expect(sealEnvelope(plaintext, key, header).iv).not.toBe(sealEnvelope(plaintext, key, header).iv);
  });

  it('refuses another key', () => {
    const e = sealEnvelope(plaintext, key, header);
    expect(() => openEnvelope(e, { plaintext: randomBytes(32) })).toThrow();
  });

  it.each(['accessor', 'fingerprint', 'expiresAt', 'kmsKeyId'] as const)('refuses a changed clear field (%s)', (field) => {
    const e = sealEnvelope(plaintext, key, header);
    expect(() => openEnvelope({ ...e, [field]: e[field] + 'x' }, key)).toThrow();
  });

  it('refuses a changed encryption context, ciphertext or a shortened tag', () => {
    const e = sealEnvelope(plaintext, key, header);
    expect(() => openEnvelope({ ...e, encryptionContext: { ...e.encryptionContext, cluster: 'c2' } }, key)).toThrow();
    const ct = Buffer.from(e.ciphertext, 'base64');
    ct[0]! ^= 1;
    expect(() => openEnvelope({ ...e, ciphertext: ct.toString('base64') }, key)).toThrow();
    expect(() => openEnvelope({ ...e, tag: Buffer.from(e.tag, 'base64').subarray(0, 4).toString('base64') }, key)).toThrow();
  });

  it('does not depend on the order of the encryption context keys', () => {
    const e = sealEnvelope(plaintext, key, header);
    const reordered = { cluster: 'c1', purpose: 'vaultkeeper-breakglass' };
    expect(openEnvelope({ ...e, encryptionContext: reordered }, key).equals(plaintext)).toBe(true);
  });

  it('rejects a data key that is not 32 bytes, and text that is not an envelope', () => {
    expect(() => sealEnvelope(plaintext, { plaintext: randomBytes(16) }, header)).toThrow(/32 bytes/);
    expect(() => parseEnvelope('{"format":"other"}')).toThrow();
  });
});

describe('whose envelope', () => {
  const ours = { cluster: 'prod', clusterId: '0b1c-2d3e', purpose: 'vaultkeeper-breakglass' };

  it("is ours only with this cluster's id, label and purpose", () => {
    expect(envelopeOwner(ours, { ...ours })).toBe('ours');
    expect(envelopeOwner(ours, { ...ours, clusterId: 'ffff-0000' })).toBe('other');
    expect(envelopeOwner(ours, { ...ours, purpose: 'something-else' })).toBe('other');
    expect(envelopeOwner(ours, { ...ours, extra: 'x' })).toBe('other');
  });

  it('accepts an envelope from before the cluster id (same label and purpose) as legacy, never another label', () => {
    expect(envelopeOwner(ours, { cluster: 'prod', purpose: 'vaultkeeper-breakglass' })).toBe('legacy');
    expect(envelopeOwner(ours, { cluster: 'vault', purpose: 'vaultkeeper-breakglass' })).toBe('other');
  });
});
