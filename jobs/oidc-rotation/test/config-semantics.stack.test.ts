// The facts about auth/<mount>/config that the job is built on, checked against the real
// OpenBao of the local stack (not the job): a write replaces the whole config, a read never
// returns the client secret, and a write Vault cannot validate (discovery unreachable) is
// refused with a 4xx and changes nothing.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VaultError } from '@vaultkeeper/vault';
import { readStack } from '../../../test/stack/stack.ts';
import { authentikSecret, createTestbed, destroyTestbed, injectFailure, readConfig, rootVault, type Testbed } from './testbed.ts';

let tb: Testbed | undefined;
let fullConfig: Record<string, unknown>;

beforeAll(async () => {
  const ca = readFileSync(readStack().kube.caFile, 'utf8');
  tb = await createTestbed({
    extraConfig: {
      jwt_supported_algs: ['RS256', 'ES256'],
      namespace_in_state: false,
      override_allowed_server_names: ['auth.example.test'],
      oidc_discovery_ca_pem: ca,
      provider_config: { provider: 'azure' },
    },
  });
  fullConfig = await readConfig(tb);
});
afterAll(() => destroyTestbed(tb));

describe('auth/<mount>/config on OpenBao 2.6.2', () => {
  it('reads back every field it was given except oidc_client_secret', () => {
    expect(fullConfig).not.toHaveProperty('oidc_client_secret');
    expect(Object.keys(fullConfig).sort()).toEqual(
      [
        'bound_issuer',
        'default_role',
        'jwks_ca_pem',
        'jwks_url',
        'jwt_supported_algs',
        'jwt_validation_pubkeys',
        'namespace_in_state',
        'oidc_client_id',
        'oidc_discovery_ca_pem',
        'oidc_discovery_url',
        'oidc_response_mode',
        'oidc_response_types',
        'override_allowed_server_names',
        'provider_config',
        'status',
      ].sort(),
    );
    expect(fullConfig).toMatchObject({
      default_role: 'default',
      jwt_supported_algs: ['RS256', 'ES256'],
      namespace_in_state: false,
      override_allowed_server_names: ['auth.example.test'],
      provider_config: { provider: 'azure' },
      oidc_response_types: ['code'],
      oidc_response_mode: 'query',
    });
    expect(String(fullConfig.oidc_discovery_ca_pem)).toContain('BEGIN CERTIFICATE');
  });

  it('refuses with a 4xx, changing nothing, when it cannot fetch the discovery document during the write', async () => {
    const vault = await rootVault();
    try {
      await injectFailure({ method: 'GET', path: `/application/o/${tb!.slug}/.well-known/openid-configuration`, status: 503, times: 1 });
      const { status: _s, ...settings } = fullConfig;
      const err = await vault
        .write(`auth/${tb!.mount}/config`, { ...settings, default_role: 'changed', oidc_client_secret: await authentikSecret(tb!.providerPk) })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VaultError);
      expect((err as VaultError).status).toBe(400);
      expect((err as VaultError).errors.join(' ')).toContain('error checking oidc discovery URL');
      const { status: _s2, ...now } = await readConfig(tb!);
      expect(now).toEqual(settings);
    } finally {
      vault.close();
    }
  });

  it('replaces the whole config on write: fields left out go back to empty (namespace_in_state is kept)', async () => {
    const vault = await rootVault();
    try {
      await vault.write(`auth/${tb!.mount}/config`, {
        oidc_discovery_url: fullConfig.oidc_discovery_url,
        oidc_client_id: fullConfig.oidc_client_id,
        oidc_client_secret: await authentikSecret(tb!.providerPk),
      });
      const after = await readConfig(tb!);
      expect(after).toMatchObject({
        oidc_discovery_url: fullConfig.oidc_discovery_url,
        oidc_client_id: fullConfig.oidc_client_id,
        default_role: '',
        bound_issuer: '',
        oidc_discovery_ca_pem: '',
        oidc_response_mode: '',
        oidc_response_types: [],
        jwt_supported_algs: [],
        override_allowed_server_names: [],
        provider_config: {},
        // pathConfigWrite keeps the existing value of this one field when it is left out.
        namespace_in_state: false,
      });
      expect(after).not.toHaveProperty('oidc_client_secret');
    } finally {
      vault.close();
    }
  });
});
