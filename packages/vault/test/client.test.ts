import { describe, expect, it } from 'vitest';
import { createLogger } from '@vaultkeeper/runtime';
import { VaultClient, VaultError, VaultUnreachableError, isLoopback, isRetryable, type VaultConfig } from '../src/index.ts';

const log = createLogger({ job: 'test', level: 'silent' });
const cfg = (address: string, extra: Partial<VaultConfig> = {}): VaultConfig => ({
  address,
  fallbackAddresses: [],
  allowInsecureHttp: false,
  auth: { mount: 'kubernetes', tokenPath: '/dev/null' },
  requestTimeoutSeconds: 5,
  callDeadlineSeconds: 5,
  ...extra,
});

describe('isRetryable', () => {
  const unreachable = (neverSent: boolean) => new VaultUnreachableError('POST', 'p', 'ECONNRESET', 'http://127.0.0.1:1', neverSent);
  it.each([
    ['a 503 on a read', new VaultError('GET', 'p', 503), true, true],
    ['a 429 on a read', new VaultError('GET', 'p', 429), true, true],
    ['a 503 on a plain write', new VaultError('POST', 'p', 503), false, false],
    ['a 403', new VaultError('GET', 'p', 403), true, false],
    ['a 400 (CAS mismatch)', new VaultError('POST', 'p', 400), true, false],
    ['a reset on an idempotent call', unreachable(false), true, true],
    ['a reset on a write that may have arrived', unreachable(false), false, false],
    ['a refused connection on a write (never sent)', unreachable(true), false, true],
    ['anything else', new Error('x'), true, false],
  ])('%s', (_what, err, idempotent, expected) => {
    expect(isRetryable(err, idempotent)).toBe(expected);
  });
});

describe('VaultClient', () => {
  it('refuses plain http to a non-loopback address unless allowed', () => {
    expect(() => new VaultClient(cfg('http://vault.example.com:8200'), log)).toThrow(/refusing plain http/);
    expect(() => new VaultClient(cfg('http://vault.example.com:8200', { allowInsecureHttp: true }), log)).not.toThrow();
    expect(() => new VaultClient(cfg('http://127.0.0.1:8200'), log)).not.toThrow();
    expect(() => new VaultClient(cfg('https://127.0.0.1:8200', { fallbackAddresses: ['http://10.0.0.2:8200'] }), log)).toThrow(/10\.0\.0\.2/);
  });

  it('says which node could not be reached, and that a refused call was never sent', async () => {
    const c = new VaultClient(cfg('http://127.0.0.1:1', { callDeadlineSeconds: 1 }), log);
    c.setToken('hvs.unit-test-token-value', false);
    const err = await c.read('secret/data/x').catch((e: unknown) => e);
    c.close();
    expect(err).toBeInstanceOf(VaultUnreachableError);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', neverSent: true, path: 'secret/data/x' });
    expect(String((err as Error).message)).not.toContain('hvs.unit-test-token-value');
  });

  it('recognises loopback addresses', () => {
    expect(isLoopback('http://127.0.0.1:8200')).toBe(true);
    expect(isLoopback('http://localhost:8200')).toBe(true);
    expect(isLoopback('http://[::1]:8200')).toBe(true);
    expect(isLoopback('http://10.0.0.1:8200')).toBe(false);
  });
});

describe('VaultError', () => {
  it('carries method, path, status and errors, and nothing else in its message', () => {
    const e = new VaultError('POST', 'auth/kubernetes/login', 403, ['permission denied']);
    expect(e.message).toBe('Vault POST /v1/auth/kubernetes/login answered 403: permission denied');
  });
});
