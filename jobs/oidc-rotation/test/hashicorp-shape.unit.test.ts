// HashiCorp Vault's shape of auth/<mount>/config, fed to the job's own read/write-back code.
// The suite runs against OpenBao 2.6 (config-semantics.stack.test.ts proves that shape); this
// file covers what HashiCorp Vault 1.2x returns beyond it. Source, read not copied (BSL):
// hashicorp/vault-plugin-auth-jwt path_config.go (pathConfigRead) and the Vault API docs,
// developer.hashicorp.com/vault/api-docs/auth/jwt ("Configure"): the read also returns
// `unsupported_critical_cert_extensions` (a list of OIDs), which OpenBao 2.6 does not have.
// See docs/vault-compatibility.md.
import { describe, expect, it } from 'vitest';
import { carryOverProblems, configWriteBody, oidcConfigSchema } from '../src/oidc-config.ts';

/** A HashiCorp Vault 1.2x read of a configured OIDC mount (values made up, field set per the source above). */
const HASHICORP_READ = {
  bound_issuer: 'https://auth.example.test/application/o/vault/',
  default_role: 'web',
  jwks_ca_pem: '',
  jwks_url: '',
  jwt_supported_algs: [],
  jwt_validation_pubkeys: [],
  namespace_in_state: true,
  oidc_client_id: 'client-1',
  oidc_discovery_ca_pem: '',
  oidc_discovery_url: 'https://auth.example.test/application/o/vault/',
  oidc_response_mode: '',
  oidc_response_types: [],
  provider_config: {},
  unsupported_critical_cert_extensions: ['1.2.3.4.5'],
};

describe('oidc-rotation against the HashiCorp Vault shape of auth/<mount>/config', () => {
  it('parses it and finds nothing that a write-back would lose', () => {
    const cfg = oidcConfigSchema.parse(HASHICORP_READ);
    expect(carryOverProblems(cfg)).toEqual([]);
  });

  it('carries the Vault-only field over on the write-back, so the replace-on-write keeps it', () => {
    const body = configWriteBody(oidcConfigSchema.parse(HASHICORP_READ), 'new-secret-value');
    expect(body.unsupported_critical_cert_extensions).toEqual(['1.2.3.4.5']);
    expect(body.namespace_in_state).toBe(true);
    expect(body.oidc_client_secret).toBe('new-secret-value');
  });
});
