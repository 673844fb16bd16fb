import type { Application, OAuth2Provider } from '@vaultkeeper/authentik';
import { loadConfig, mergeSpecs, commonConfig } from '@vaultkeeper/runtime';
import { describe, expect, it } from 'vitest';
import { jobConfig, leaseSeconds, recordPath } from '../src/config.ts';
import { fingerprint, newFingerprintKey } from '../src/fingerprint.ts';
import { oidcConfigSchema } from '../src/oidc-config.ts';
import { preflightProblems, type PreflightInput } from '../src/preflight.ts';
import { classifyPending } from '../src/recover.ts';
import { held, markCurrent, pruneChanges, recordSchema, withoutPending, type RotationRecord } from '../src/rotation-record.ts';

const provider: OAuth2Provider = {
  pk: 4,
  name: 'Vault',
  client_type: 'confidential',
  client_id: 'client-4',
  client_secret: 'x'.repeat(128),
  signing_key: 'c0ffee00-0000-4000-8000-000000000000',
  assigned_application_slug: 'vault',
  assigned_application_name: 'Vault',
  authorization_flow: 'f',
  redirect_uris: [],
};
const application: Application = { pk: 'a', name: 'Vault', slug: 'vault', provider: 4 };
const vaultConfig = oidcConfigSchema.parse({ oidc_discovery_url: 'http://a/application/o/vault/', oidc_client_id: 'client-4', provider_config: {} });
const input = (o: Partial<PreflightInput> = {}): PreflightInput => ({
  provider,
  application,
  expectedApplication: 'vault',
  vaultConfig,
  mount: 'oidc',
  record: undefined,
  ...o,
});

describe('preflightProblems', () => {
  it('passes a confidential, signed provider of the expected application that Vault is configured for', () => {
    expect(preflightProblems(input())).toEqual([]);
  });

  it('refuses a public client', () => {
    expect(preflightProblems(input({ provider: { ...provider, client_type: 'public' } }))[0]).toMatch(/public client/);
  });

  it('refuses a provider without signing key, naming the HS256 failure', () => {
    expect(preflightProblems(input({ provider: { ...provider, signing_key: null } }))[0]).toMatch(/no signing key.*HS256/);
  });

  it("refuses a provider of another application, or an application whose provider is another", () => {
    expect(preflightProblems(input({ provider: { ...provider, assigned_application_slug: 'grafana' } }))[0]).toMatch(/does not belong to application "vault"/);
    expect(preflightProblems(input({ application: { ...application, provider: 9 } }))[0]).toMatch(/does not belong/);
  });

  it('refuses when Vault is configured for another client, or the config is not an OIDC one', () => {
    expect(preflightProblems(input({ vaultConfig: { ...vaultConfig, oidc_client_id: 'other' } }))[0]).toMatch(/another client_id/);
    expect(preflightProblems(input({ vaultConfig: { ...vaultConfig, oidc_discovery_url: '' } }))[0]).toMatch(/no oidc_discovery_url/);
  });

  it('refuses a config that cannot be written back whole', () => {
    expect(preflightProblems(input({ vaultConfig: { ...vaultConfig, provider_config: { provider: 'gsuite' } } }))[0]).toMatch(/gsuite_service_account/);
  });

  it("refuses a record that belongs to another provider or mount", () => {
    const record = { clientId: 'client-9', mount: 'oidc' } as RotationRecord;
    expect(preflightProblems(input({ record }))[0]).toMatch(/record belongs to another/);
  });

  it('names every problem at once', () => {
    expect(preflightProblems(input({ provider: { ...provider, client_type: 'public', signing_key: null, client_id: 'zz' } }))).toHaveLength(3);
  });
});

function record(): RotationRecord {
  const key = newFingerprintKey();
  const at = new Date('2026-01-01T00:00:00Z');
  return recordSchema.parse({
    schema: 1,
    mount: 'oidc',
    clientId: 'client-4',
    providerPk: 4,
    application: 'vault',
    fingerprintKey: key,
    current: held(key, 'secret-A-value', fingerprint, at),
    previous: null,
    pending: null,
    lock: { holder: 'run-1', acquiredAt: at.toISOString(), expiresAt: at.toISOString() },
    lastChange: null,
    externalChanges: [],
    writeId: 'w1',
  });
}

describe('the rotation record', () => {
  it('marks a new secret current, keeping the old one as previous and ending pending and claim', () => {
    const r = record();
    const at = new Date('2026-02-01T00:00:00Z');
    const next = markCurrent({ ...r, pending: { mode: 'rotate', secret: 'secret-B-value', fingerprint: 'f', authentikBefore: r.current, startedAt: '', runId: 'x' } }, held(r.fingerprintKey, 'secret-B-value', fingerprint, at), 'rotate', at);
    expect(next.current?.secret).toBe('secret-B-value');
    expect(next.previous?.secret).toBe('secret-A-value');
    expect(next.pending).toBeNull();
    expect(next.lock).toBeNull();
    expect(next.lastChange).toEqual({ mode: 'rotate', at: at.toISOString() });
    expect(next).not.toHaveProperty('writeId');
  });

  it('keeps current and previous when the secret written is the one already current', () => {
    const r = { ...record(), previous: held('a2V5', 'older-secret', fingerprint, new Date()) };
    const next = markCurrent(r, held(r.fingerprintKey, 'secret-A-value', fingerprint, new Date()), 'recover', new Date());
    expect(next.current).toEqual(r.current);
    expect(next.previous).toEqual(r.previous);
  });

  it('drops a pending change that never happened', () => {
    const r = { ...record(), pending: { mode: 'rotate' as const, secret: 'zzz-secret', fingerprint: 'f', authentikBefore: null, startedAt: '', runId: 'x' } };
    const next = withoutPending(r);
    expect(next.pending).toBeNull();
    expect(next.current).toEqual(r.current);
  });

  it('keeps outside changes inside the churn window only', () => {
    const now = new Date('2026-03-10T00:00:00Z');
    const kept = pruneChanges(['2026-03-01T00:00:00Z', '2026-03-09T00:00:00Z'], 7 * 86400, now, now);
    expect(kept).toEqual(['2026-03-09T00:00:00Z', now.toISOString()]);
  });
});

describe('classifyPending', () => {
  const pending = { mode: 'rotate' as const, secret: 'new-secret', fingerprint: 'f', authentikBefore: { secret: 'old-secret', fingerprint: 'g', setAt: '' }, startedAt: '', runId: 'r' };
  it('completes when Authentik took the pending secret', () => expect(classifyPending(pending, 'new-secret')).toBe('completed'));
  it('abandons when Authentik still has the one from before', () => expect(classifyPending(pending, 'old-secret')).toBe('abandoned'));
  it('follows Authentik when it has yet another one', () => expect(classifyPending(pending, 'third-secret')).toBe('superseded'));
});

describe('config', () => {
  const load = (env: Record<string, string>) => loadConfig(mergeSpecs(commonConfig, jobConfig), { env: { VAULT_ADDR: 'http://127.0.0.1:8200', ...env } });

  it('has working defaults and derives the record path from the mount', () => {
    const cfg = load({});
    expect(cfg.oidc.mount).toBe('oidc');
    expect(cfg.kvMount).toBe('secret');
    expect(cfg.authentik.apiTokenPath).toBe('vaultkeeper/authentik/api-token');
    expect(cfg.record.lockTtlSeconds).toBeUndefined();
    // 3 × (Authentik 60 s + 10 s, Vault 90 s + 30 s)
    expect(leaseSeconds(cfg)).toBe(570);
    expect(recordPath(cfg)).toBe('vaultkeeper/oidc-rotation/oidc');
    expect(recordPath(load({ OIDC_ROTATION_MOUNT: 'people' }))).toBe('vaultkeeper/oidc-rotation/people');
  });

  it('reads every setting from its variable', () => {
    const cfg = load({
      AUTHENTIK_URL: 'https://auth.example.com',
      OIDC_ROTATION_APPLICATION: 'vault',
      OIDC_ROTATION_PROVIDER_ID: '12',
      OIDC_ROTATION_LOCK_TTL: '5m',
      OIDC_ROTATION_CHURN_WINDOW: '3d',
      OIDC_ROTATION_RECORD_PATH: 'ops/oidc',
    });
    expect(cfg.authentik).toMatchObject({ url: 'https://auth.example.com', application: 'vault', providerId: 12 });
    expect(cfg.record).toEqual({ path: 'ops/oidc', lockTtlSeconds: 300 });
    expect(cfg.churn.windowSeconds).toBe(3 * 86400);
  });

  it('refuses a lease shorter than 3 × the longest Authentik and Vault calls, naming the field (exit 2)', () => {
    expect(() => leaseSeconds(load({ OIDC_ROTATION_LOCK_TTL: '5m' }))).toThrow(/record\.lockTtlSeconds.*at least 570s/);
    expect(() => leaseSeconds(load({ OIDC_ROTATION_LOCK_TTL: '5m' }))).toThrow(expect.objectContaining({ name: 'ConfigError' }));
    expect(leaseSeconds(load({ OIDC_ROTATION_LOCK_TTL: '10m' }))).toBe(600);
    const short = { AUTHENTIK_CALL_DEADLINE: '1s', AUTHENTIK_REQUEST_TIMEOUT: '1s', VAULT_CALL_DEADLINE: '2s', VAULT_REQUEST_TIMEOUT: '2s' };
    expect(leaseSeconds(load(short))).toBe(18);
    expect(() => leaseSeconds(load({ ...short, OIDC_ROTATION_LOCK_TTL: '17s' }))).toThrow(/record\.lockTtlSeconds/);
  });

  it('has no variable that could carry the Authentik API token', () => {
    expect(Object.keys(jobConfig.env).filter((k) => /TOKEN$/.test(k) && k !== 'VAULT_TOKEN')).toEqual([]);
  });

  it('rejects a bad slug or path', () => {
    expect(() => load({ OIDC_ROTATION_APPLICATION: 'a/b' })).toThrow(/authentik.application/);
    expect(() => load({ OIDC_ROTATION_RECORD_PATH: '../x' })).toThrow(/record.path/);
  });
});
