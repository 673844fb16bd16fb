// Vault's OIDC auth config (auth/<mount>/config) and how to change only its client secret.
//
// Two facts of the jwt/oidc auth plugin decide everything here (vault-plugin-auth-jwt and
// OpenBao's builtin/credential/jwt, path_config.go):
// - pathConfigWrite builds a brand-new config from the request alone: every field left out goes
//   back to its zero value (empty string, empty list, no provider_config); only
//   namespace_in_state is kept when omitted. A write is a replace, never a merge.
// - pathConfigRead returns every stored field except oidc_client_secret, plus a computed
//   `status`, and removes the provider's SensitiveKeys() from provider_config.
// So a secret change is: read, set oidc_client_secret, write every other field back as read;
// and where a read cannot return a field (sensitive provider_config keys) the job must refuse
// rather than silently drop it. tests/config-semantics.stack.test.ts checks both facts against
// the real server.
import { z } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';

/** What a read returns. Known fields are typed; any other field is carried over as it is. */
export const oidcConfigSchema = z.looseObject({
  oidc_discovery_url: z.string().optional(),
  oidc_discovery_ca_pem: z.string().optional(),
  oidc_client_id: z.string().optional(),
  oidc_response_mode: z.string().optional(),
  oidc_response_types: z.array(z.string()).nullable().optional(),
  default_role: z.string().optional(),
  jwt_validation_pubkeys: z.array(z.string()).nullable().optional(),
  jwt_supported_algs: z.array(z.string()).nullable().optional(),
  jwks_url: z.string().optional(),
  jwks_ca_pem: z.string().optional(),
  bound_issuer: z.string().optional(),
  provider_config: z.record(z.string(), z.unknown()).nullable().optional(),
  override_allowed_server_names: z.array(z.string()).nullable().optional(),
  namespace_in_state: z.boolean().optional(),
  status: z.string().optional(),
});
export type OidcConfig = z.infer<typeof oidcConfigSchema>;

/**
 * Fields a read returns that are not settings: `status` is computed on every read (and says
 * "invalid" for an OIDC-flow config on some versions, because no JWT validator is built for it).
 */
const READ_ONLY_FIELDS = new Set(['status']);
/** Never carried: the secret is what this job sets, and a read must not return it anyway. */
const SECRET_FIELD = 'oidc_client_secret';

/**
 * provider_config keys a read leaves out, per provider (each provider's SensitiveKeys()). A
 * provider missing from both lists is refused: the job cannot know what a read hides for it.
 */
const PROVIDERS_WITH_HIDDEN_KEYS: Record<string, string[]> = { gsuite: ['gsuite_service_account'] };
const PROVIDERS_WITHOUT_HIDDEN_KEYS = new Set(['azure', 'secureauth', 'ibmisam']);

export async function readOidcConfig(vault: VaultClient, mount: string): Promise<OidcConfig | undefined> {
  try {
    const cfg = await vault.read(`auth/${mount}/config`, oidcConfigSchema.nullable());
    return cfg ?? undefined;
  } catch (err) {
    // An enabled but never configured method answers 404 (pathConfigRead returns nothing).
    if (err instanceof VaultError && err.status === 404) return undefined;
    throw err;
  }
}

/** Why this config cannot be written back whole; empty when it can. */
export function carryOverProblems(cfg: OidcConfig): string[] {
  const problems: string[] = [];
  const pc = cfg.provider_config ?? {};
  if (Object.keys(pc).length > 0) {
    const provider = typeof pc.provider === 'string' ? pc.provider : undefined;
    const hidden = provider ? PROVIDERS_WITH_HIDDEN_KEYS[provider] : undefined;
    if (hidden) {
      problems.push(
        `provider_config (provider "${provider}") may hold ${hidden.join(', ')}, which Vault never returns on read; ` +
          `writing the config back would drop it. Rotate by hand: vault write auth/<mount>/config with every field`,
      );
    } else if (!provider || !PROVIDERS_WITHOUT_HIDDEN_KEYS.has(provider)) {
      problems.push(
        `provider_config names provider ${provider ? `"${provider}"` : '(none)'}, for which the job cannot tell whether a read hides keys; refusing rather than risk dropping them`,
      );
    }
  }
  if (SECRET_FIELD in cfg) {
    // Not something any known version does; if one did, carrying it would be wrong anyway.
    problems.push(`the config read returned ${SECRET_FIELD}; this Vault behaves unlike the jwt plugin the job knows`);
  }
  return problems;
}

/**
 * The body of a write that changes only the client secret: every field the read returned, as
 * it returned it, except read-only ones. null (a list never set) is left out, which writes the
 * same zero value and keeps the plugin's list parser from seeing a null.
 */
export function configWriteBody(current: OidcConfig, clientSecret: string): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(current)) {
    if (READ_ONLY_FIELDS.has(k) || k === SECRET_FIELD || v === null || v === undefined) continue;
    body[k] = v;
  }
  body[SECRET_FIELD] = clientSecret;
  return body;
}

/**
 * Fields whose value differs between two reads (read-only ones ignored). A field missing on one
 * side counts as its zero value, so "never set" and "set to empty" are the same, as in Vault.
 */
export function changedFields(before: OidcConfig, after: OidcConfig): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  const out: string[] = [];
  for (const k of [...keys].sort()) {
    if (READ_ONLY_FIELDS.has(k) || k === SECRET_FIELD) continue;
    if (!sameValue(normalise(before[k]), normalise(after[k]))) out.push(k);
  }
  return out;
}

function normalise(v: unknown): unknown {
  if (v === null || v === undefined || v === '' || v === false) return undefined;
  if (Array.isArray(v) && v.length === 0) return undefined;
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0) return undefined;
  return v;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortKeys(x)]));
  }
  return v;
}

/**
 * Authentik's per-provider issuer is <origin>/application/o/<slug>/ (the form the discovery URL
 * must have, byte for byte, for Vault to accept the discovery document). From it the job can
 * take Authentik's origin and the application when they are not configured.
 */
export function authentikFromDiscoveryUrl(discoveryUrl: string | undefined): { url: string; application: string } | undefined {
  if (!discoveryUrl || !URL.canParse(discoveryUrl)) return undefined;
  const u = new URL(discoveryUrl);
  const m = /^(.*)\/application\/o\/([-a-zA-Z0-9_]+)\/?(?:\.well-known\/openid-configuration)?$/.exec(u.pathname);
  if (!m) return undefined;
  return { url: `${u.origin}${m[1]}`, application: m[2]! };
}

/** A role's allowed redirect URIs (for the auth_url check). */
export const oidcRoleSchema = z.looseObject({
  role_type: z.string().optional(),
  allowed_redirect_uris: z.array(z.string()).nullable().optional(),
});
export type OidcRole = z.infer<typeof oidcRoleSchema>;

export async function readOidcRole(vault: VaultClient, mount: string, role: string): Promise<OidcRole | undefined> {
  try {
    return (await vault.read(`auth/${mount}/role/${encodeURIComponent(role)}`, oidcRoleSchema.nullable())) ?? undefined;
  } catch (err) {
    if (err instanceof VaultError && err.status === 404) return undefined;
    throw err;
  }
}
