import { describe, expect, it } from 'vitest';
import { authentikFromDiscoveryUrl, carryOverProblems, changedFields, configWriteBody, oidcConfigSchema, type OidcConfig } from '../src/oidc-config.ts';

/** What OpenBao 2.6.2 returns for a fully set config (recorded from the local stack; CA shortened). */
const READ: OidcConfig = oidcConfigSchema.parse({
  bound_issuer: 'http://127.0.0.1:19000/application/o/app/',
  default_role: 'web',
  jwks_ca_pem: '',
  jwks_url: '',
  jwt_supported_algs: ['RS256', 'ES256'],
  jwt_validation_pubkeys: [],
  namespace_in_state: false,
  oidc_client_id: 'client-1',
  oidc_discovery_ca_pem: '-----BEGIN CERTIFICATE-----\nMI...\n-----END CERTIFICATE-----\n',
  oidc_discovery_url: 'http://127.0.0.1:19000/application/o/app/',
  oidc_response_mode: 'query',
  oidc_response_types: ['code'],
  override_allowed_server_names: ['auth.example.test'],
  provider_config: { provider: 'azure' },
  status: 'valid',
});

describe('configWriteBody', () => {
  it('writes back every field as read, sets only the secret, and drops the computed status', () => {
    const body = configWriteBody(READ, 'new-secret-value');
    const { status: _status, ...settings } = READ;
    expect(body).toEqual({ ...settings, oidc_client_secret: 'new-secret-value' });
    expect(body).not.toHaveProperty('status');
  });

  it('carries fields it does not know (a newer Vault) and leaves out nulls', () => {
    const read = oidcConfigSchema.parse({ ...READ, some_future_field: 'x', jwt_validation_pubkeys: null });
    const body = configWriteBody(read, 's3cr3t-value');
    expect(body.some_future_field).toBe('x');
    expect(body).not.toHaveProperty('jwt_validation_pubkeys');
  });
});

describe('carryOverProblems', () => {
  it('accepts a config without provider_config or with a provider that hides nothing', () => {
    expect(carryOverProblems(READ)).toEqual([]);
    expect(carryOverProblems({ ...READ, provider_config: {} })).toEqual([]);
    expect(carryOverProblems({ ...READ, provider_config: null })).toEqual([]);
    expect(carryOverProblems({ ...READ, provider_config: { provider: 'secureauth' } })).toEqual([]);
  });

  it('refuses a gsuite provider_config, whose service account key a read never returns', () => {
    const problems = carryOverProblems({ ...READ, provider_config: { provider: 'gsuite', fetch_groups: true } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('gsuite_service_account');
  });

  it('refuses a provider it does not know, rather than guess what a read hides', () => {
    expect(carryOverProblems({ ...READ, provider_config: { provider: 'okta-next' } })[0]).toContain('"okta-next"');
    expect(carryOverProblems({ ...READ, provider_config: { fetch_groups: true } })[0]).toContain('(none)');
  });

  it('refuses a read that returned the secret (not how the jwt plugin behaves)', () => {
    expect(carryOverProblems({ ...READ, oidc_client_secret: 'x' } as OidcConfig)[0]).toContain('oidc_client_secret');
  });
});

describe('changedFields', () => {
  it('sees nothing when only the computed status differs', () => {
    expect(changedFields(READ, { ...READ, status: 'invalid' })).toEqual([]);
  });

  it('names each field that changed, lists and maps included', () => {
    const after = { ...READ, default_role: '', jwt_supported_algs: ['RS256'], provider_config: {}, namespace_in_state: true };
    expect(changedFields(READ, after)).toEqual(['default_role', 'jwt_supported_algs', 'namespace_in_state', 'provider_config']);
  });

  it('treats a missing field like its zero value, as Vault does', () => {
    const { jwks_url: _a, jwt_validation_pubkeys: _b, ...rest } = READ;
    expect(changedFields(READ, rest)).toEqual([]);
  });

  it('ignores key order inside provider_config', () => {
    const a = { ...READ, provider_config: { provider: 'azure', x: 1 } };
    const b = { ...READ, provider_config: { x: 1, provider: 'azure' } };
    expect(changedFields(a, b)).toEqual([]);
  });
});

describe('authentikFromDiscoveryUrl', () => {
  it("takes Authentik's origin and the application from a per-provider issuer", () => {
    expect(authentikFromDiscoveryUrl('https://auth.example.com/application/o/vault/')).toEqual({ url: 'https://auth.example.com', application: 'vault' });
    expect(authentikFromDiscoveryUrl('http://127.0.0.1:19000/application/o/my_app-2/.well-known/openid-configuration')).toEqual({
      url: 'http://127.0.0.1:19000',
      application: 'my_app-2',
    });
    expect(authentikFromDiscoveryUrl('https://example.com/authentik/application/o/vault')).toEqual({ url: 'https://example.com/authentik', application: 'vault' });
  });

  it('gives nothing for a global issuer or another IdP', () => {
    expect(authentikFromDiscoveryUrl('https://auth.example.com/')).toBeUndefined();
    expect(authentikFromDiscoveryUrl('https://login.microsoftonline.com/tenant/v2.0')).toBeUndefined();
    expect(authentikFromDiscoveryUrl(undefined)).toBeUndefined();
    expect(authentikFromDiscoveryUrl('not a url')).toBeUndefined();
  });
});
