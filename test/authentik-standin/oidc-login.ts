/**
 * A person's OIDC login through Vault, without a browser, against the Authentik stand-in:
 * auth_url from Vault -> the stand-in's authorize endpoint (which answers at once with a
 * redirect carrying code and state) -> Vault's callback, where Vault exchanges the code at the
 * stand-in's token endpoint with its configured client secret and returns a Vault token.
 */
import { CLI_CALLBACK, OIDC_MOUNT, OIDC_ROLE } from './launch.ts';
import { baoApi } from '../stack/http.ts';

export interface OidcLoginOptions {
  role?: string;
  mount?: string;
  /** Must be one of the role's allowed_redirect_uris and the provider's redirect URIs. */
  redirectUri?: string;
  timeoutMs?: number;
}

export interface OidcLoginResult {
  token: string;
  accessor: string;
  policies: string[];
  metadata: Record<string, string>;
}

/** Which step failed, and what the other side said (no codes, tokens or secrets). */
export class OidcLoginError extends Error {
  override readonly name = 'OidcLoginError';
  constructor(
    readonly step: 'auth_url' | 'authorize' | 'callback',
    readonly status: number,
    message: string,
  ) {
    super(`OIDC login failed at ${step} (HTTP ${status}): ${message}`);
  }
}

export async function oidcLoginThroughVault(vaultAddr: string, opts: OidcLoginOptions = {}): Promise<OidcLoginResult> {
  const mount = opts.mount ?? OIDC_MOUNT;
  const role = opts.role ?? OIDC_ROLE;
  const redirectUri = opts.redirectUri ?? CLI_CALLBACK;
  const timeout = () => AbortSignal.timeout(opts.timeoutMs ?? 15_000);

  // 1. Vault builds the authorization URL (state, nonce, client_id, scopes) from the discovery document.
  // baoApi, not fetch: it carries the stack's TLS trust for OpenBao (CA and service name).
  const authUrlRes = await baoApi(vaultAddr, 'POST', `auth/${mount}/oidc/auth_url`, { body: { role, redirect_uri: redirectUri }, timeoutMs: opts.timeoutMs ?? 15_000 });
  const authUrlBody = (typeof authUrlRes.body === 'object' && authUrlRes.body ? authUrlRes.body : {}) as { data?: { auth_url?: string }; errors?: string[]; warnings?: string[] };
  const authUrl = authUrlBody.data?.auth_url;
  if (authUrlRes.status !== 200 || !authUrl) {
    // Vault answers 200 with an empty auth_url and a warning when the redirect_uri is not allowed.
    throw new OidcLoginError('auth_url', authUrlRes.status, [...(authUrlBody.errors ?? []), ...(authUrlBody.warnings ?? [])].join('; ') || 'no auth_url');
  }

  // 2. The "browser" visits the authorization endpoint; the stand-in redirects straight back.
  const authorizeRes = await fetch(authUrl, { redirect: 'manual', signal: timeout() });
  const location = authorizeRes.headers.get('location');
  if (authorizeRes.status < 300 || authorizeRes.status > 399 || !location) {
    const text = await authorizeRes.text().catch(() => '');
    throw new OidcLoginError('authorize', authorizeRes.status, text.slice(0, 300) || 'no redirect');
  }
  await authorizeRes.body?.cancel();
  const back = new URL(location);
  const error = back.searchParams.get('error');
  if (error) throw new OidcLoginError('authorize', authorizeRes.status, `${error}: ${back.searchParams.get('error_description') ?? ''}`);
  const code = back.searchParams.get('code');
  const state = back.searchParams.get('state');
  if (!code || !state) throw new OidcLoginError('authorize', authorizeRes.status, 'redirect without code and state');

  // 3. The callback, as the CLI's local listener would forward it: Vault exchanges the code.
  const query = new URLSearchParams({ state, code });
  const cbRes = await baoApi(vaultAddr, 'GET', `auth/${mount}/oidc/callback?${query}`, { timeoutMs: opts.timeoutMs ?? 15_000 });
  const cbBody = (typeof cbRes.body === 'object' && cbRes.body ? cbRes.body : {}) as {
    auth?: { client_token?: string; accessor?: string; policies?: string[]; metadata?: Record<string, string> };
    errors?: string[];
  };
  const token = cbBody.auth?.client_token;
  if (cbRes.status !== 200 || !token) throw new OidcLoginError('callback', cbRes.status, (cbBody.errors ?? []).join('; ') || 'no client_token');
  return { token, accessor: cbBody.auth?.accessor ?? '', policies: cbBody.auth?.policies ?? [], metadata: cbBody.auth?.metadata ?? {} };
}
