// After writing: prove that the change took and that a login would work, without a person.
// 1. the config read back has the expected client_id and every other field as before;
// 2. Vault can still build an authorization URL for the role (a login would start);
// 3. Authentik accepts the secret: its RFC 7009 revocation endpoint, called with HTTP Basic
//    client_id:secret and a random token, answers 200 for valid client credentials and 401
//    invalid_client otherwise, and revoking a token that does not exist changes nothing.
import type { AuthentikClient } from '@vaultkeeper/authentik';
import { z } from '@vaultkeeper/runtime';
import type { VaultClient } from '@vaultkeeper/vault';
import { changedFields, readOidcConfig, type OidcConfig } from './oidc-config.ts';

export interface VerifyInput {
  vault: VaultClient;
  authentik: AuthentikClient;
  mount: string;
  before: OidcConfig;
  clientId: string;
  secret: string;
  role: string;
  redirectUri: string;
}

export interface VerifyResult {
  ok: boolean;
  /** One entry per check that failed, meant for an operator. */
  failures: string[];
  checks: { configReadBack: boolean; fieldsUnchanged: boolean; authUrl: boolean; authentikAcceptsSecret: boolean };
}

const authUrlSchema = z.looseObject({ auth_url: z.string() });

export async function verifyAfterWrite(v: VerifyInput): Promise<VerifyResult> {
  const failures: string[] = [];
  const checks = { configReadBack: false, fieldsUnchanged: false, authUrl: false, authentikAcceptsSecret: false };

  try {
    const after = await readOidcConfig(v.vault, v.mount);
    if (!after) failures.push(`auth/${v.mount}/config reads back empty`);
    else {
      checks.configReadBack = after.oidc_client_id === v.clientId;
      if (!checks.configReadBack) failures.push(`auth/${v.mount}/config reads back with another client_id`);
      const changed = changedFields(v.before, after);
      checks.fieldsUnchanged = changed.length === 0;
      if (changed.length) failures.push(`auth/${v.mount}/config fields changed by the write: ${changed.join(', ')}`);
    }
  } catch (err) {
    failures.push(`reading auth/${v.mount}/config back failed: ${(err as Error).message}`);
  }

  try {
    // Vault answers 200 with an empty auth_url (and a warning) when it cannot build one, e.g.
    // for a redirect_uri the role does not allow; building it makes Vault fetch the discovery
    // document with the config just written.
    const res = await v.vault.write(`auth/${v.mount}/oidc/auth_url`, { role: v.role, redirect_uri: v.redirectUri }, authUrlSchema);
    const url = res?.auth_url ? new URL(res.auth_url) : undefined;
    checks.authUrl = url?.searchParams.get('client_id') === v.clientId;
    if (!checks.authUrl) failures.push(`Vault built no usable auth_url for role ${v.role} (redirect_uri ${v.redirectUri})`);
  } catch (err) {
    failures.push(`auth_url for role ${v.role} failed: ${(err as Error).message}`);
  }

  try {
    checks.authentikAcceptsSecret = await v.authentik.checkClientSecret(v.clientId, v.secret);
    if (!checks.authentikAcceptsSecret) failures.push('Authentik rejects the client secret Vault now holds (invalid_client)');
  } catch (err) {
    failures.push(`checking the secret against Authentik failed: ${(err as Error).message}`);
  }

  return { ok: failures.length === 0, failures, checks };
}
