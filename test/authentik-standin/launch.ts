/**
 * What the local stack calls: start the Authentik stand-in as its own process, then wire it into
 * OpenBao as the `oidc` auth method, the way an operator wires a real Authentik into Vault.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createAuthentikClient } from '@vaultkeeper/authentik';
import { baoApi } from '../stack/http.ts';
import { ensureApiToken } from './files.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/** The application the stand-in creates first, and the role the bootstrap writes. */
export const VAULT_APP_SLUG = 'vault';
export const OIDC_MOUNT = 'oidc';
export const OIDC_ROLE = 'default';
/** Where `vault login -method=oidc` listens for the redirect. */
export const CLI_CALLBACK = 'http://127.0.0.1:8250/oidc/callback';
/** KV v2 path (under the `secret/` mount) holding the Authentik API token for vaultkeeper's jobs. */
export const API_TOKEN_KV_PATH = 'secret/data/vaultkeeper/authentik/api-token';

/**
 * Spawns `node --import tsx main.ts` detached in its own process group, logging to `logFile`,
 * and resolves once it answers. The API token is reused from `stateDir/api-token` when a
 * previous run left one (the state file next to it keeps the provider and its secret), else a
 * new random one is written there with mode 0600.
 */
export async function startAuthentikStandin(opts: { stateDir: string; port: number; logFile: string }): Promise<{ pid: number; url: string; apiToken: string }> {
  const apiToken = ensureApiToken(opts.stateDir);
  const url = `http://127.0.0.1:${opts.port}`;
  if (await answers(url)) throw new Error(`something already answers on ${url}: stop it before starting the Authentik stand-in`);

  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  let child;
  try {
    // cwd is test/, whose node_modules has tsx: `--import tsx` resolves from there.
    child = spawn(process.execPath, ['--import', 'tsx', join(HERE, 'main.ts'), '--port', String(opts.port), '--state-dir', opts.stateDir], {
      cwd: join(HERE, '..'),
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn the Authentik stand-in');
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = signal ?? `code ${code}`;
  });
  child.unref();

  const deadline = Date.now() + 30_000;
  while (!(await answers(url))) {
    if (exited !== undefined || Date.now() > deadline) {
      if (exited === undefined) process.kill(-pid, 'SIGTERM');
      throw new Error(`the Authentik stand-in ${exited ? `exited (${exited})` : 'did not answer within 30 s'}; last log lines:\n${tail(opts.logFile, 20)}`);
    }
    await sleep(100);
  }
  return { pid, url, apiToken };
}

/**
 * Configures OpenBao's OIDC login against the stand-in (idempotent):
 * - allows the role's redirect URIs on the Authentik provider (PATCH redirect_uris);
 * - enables the `oidc` auth method (the jwt plugin, type `oidc`) at `auth/oidc`;
 * - writes `auth/oidc/config` from the application's discovery document and the provider's
 *   current client id and secret, and the role `default`;
 * - stores the Authentik API token in KV v2 at secret/vaultkeeper/authentik/api-token (`token`).
 * Writes `stateDir/oidc.json` (issuer, client id, provider pk; no secret) for tests to read.
 */
export async function bootstrapAuthentikInVault(opts: { vaultAddr: string; vaultToken: string; standinUrl: string; apiToken: string; stateDir: string }): Promise<void> {
  const authentik = createAuthentikClient({ baseUrl: opts.standinUrl, token: opts.apiToken, timeoutMs: 10_000 });
  const app = await authentik.getApplication(VAULT_APP_SLUG);
  if (app.provider === null) throw new Error(`Authentik application ${VAULT_APP_SLUG} has no provider`);
  const provider = await authentik.getProvider(app.provider);
  const discovery = await authentik.getOpenIdConfiguration(VAULT_APP_SLUG);
  const uiCallback = `${new URL(opts.vaultAddr).origin}/ui/vault/auth/${OIDC_MOUNT}/oidc/callback`;
  const redirectUris = [CLI_CALLBACK, uiCallback];

  // The provider must allow every URI the role may redirect to. The typed client only PATCHes
  // client_secret (by design), so this one-off admin change goes through plain fetch.
  const missing = redirectUris.filter((u) => !provider.redirect_uris.some((r) => r.matching_mode === 'strict' && r.url === u));
  if (missing.length) {
    const res = await fetch(`${opts.standinUrl}/api/v3/providers/oauth2/${provider.pk}/`, {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${opts.apiToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [...provider.redirect_uris, ...missing.map((url) => ({ matching_mode: 'strict', url }))] }),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok) throw new Error(`PATCH redirect_uris of Authentik provider ${provider.pk}: HTTP ${res.status}`);
  }

  const vault = (method: string, path: string, body?: unknown) => vaultRequest(opts.vaultAddr, opts.vaultToken, method, path, body);

  const mounts = (await vault('GET', 'sys/auth')) as { data?: Record<string, { type: string }> } & Record<string, unknown>;
  const table = (mounts.data ?? mounts) as Record<string, { type?: string }>;
  const existing = table[`${OIDC_MOUNT}/`];
  if (!existing) {
    await vault('POST', `sys/auth/${OIDC_MOUNT}`, { type: 'oidc', description: 'People, through Authentik (OIDC)' });
  } else if (existing.type !== 'oidc' && existing.type !== 'jwt') {
    throw new Error(`auth/${OIDC_MOUNT} is already mounted with type ${existing.type}`);
  }

  await writeOidcConfig(opts.vaultAddr, opts.vaultToken, { issuer: discovery.issuer, clientId: provider.client_id, clientSecret: provider.client_secret });
  await vault('POST', `auth/${OIDC_MOUNT}/role/${OIDC_ROLE}`, oidcRoleBody({ clientId: provider.client_id, redirectUris, ttl: '15m' }));
  await vault('POST', API_TOKEN_KV_PATH, { data: { token: opts.apiToken } });

  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(opts.stateDir, 'oidc.json'),
    JSON.stringify({ mount: OIDC_MOUNT, role: OIDC_ROLE, appSlug: VAULT_APP_SLUG, providerPk: provider.pk, clientId: provider.client_id, issuer: discovery.issuer, redirectUris }, null, 2) + '\n',
    { mode: 0o600 },
  );
}

/**
 * Writes `auth/<mount>/config` (a full replace: Vault resets every field not given). Vault
 * fetches the discovery document while it validates this write, so the stand-in must be up.
 */
/** The body of an OIDC login role for the stand-in's users: the stack's `default` role and test mounts alike. */
export function oidcRoleBody(opts: { clientId: string; redirectUris: string[]; ttl: string }): Record<string, unknown> {
  return {
    role_type: 'oidc',
    allowed_redirect_uris: opts.redirectUris,
    bound_audiences: [opts.clientId],
    user_claim: 'sub',
    groups_claim: 'groups',
    oidc_scopes: ['openid', 'email', 'profile'],
    claim_mappings: { email: 'email', preferred_username: 'username' },
    token_policies: ['default'],
    token_ttl: opts.ttl,
    token_max_ttl: opts.ttl,
  };
}

export async function writeOidcConfig(
  vaultAddr: string,
  vaultToken: string,
  c: { issuer: string; clientId: string; clientSecret: string; mount?: string },
): Promise<void> {
  // oidc_discovery_url must equal the discovery document's issuer byte for byte, trailing slash
  // included: OpenBao rejects the write ("error checking oidc discovery URL") otherwise.
  await vaultRequest(vaultAddr, vaultToken, 'POST', `auth/${c.mount ?? OIDC_MOUNT}/config`, {
    oidc_discovery_url: c.issuer,
    oidc_client_id: c.clientId,
    oidc_client_secret: c.clientSecret,
    default_role: OIDC_ROLE,
    // Only used for JWT (not OIDC) logins; set so that a JWT login on this mount checks it too.
    bound_issuer: c.issuer,
    oidc_response_types: ['code'],
    oidc_response_mode: 'query',
    jwt_supported_algs: ['RS256'],
  });
}

/** One call to Vault's HTTP API; throws with Vault's `errors` (never the request body) on a non-2xx. */
export async function vaultRequest(addr: string, token: string | undefined, method: string, path: string, body?: unknown): Promise<unknown> {
  // baoApi: the stack's TLS trust (CA, service name) comes with it.
  const res = await baoApi(addr.replace(/\/+$/, ''), method, path, { ...(token ? { token } : {}), ...(body === undefined ? {} : { body }), timeoutMs: 15_000 });
  const parsed: unknown = res.body;
  if (res.status < 200 || res.status > 299) {
    const errors = (parsed as { errors?: unknown } | undefined)?.errors;
    throw new Error(`Vault ${method} ${path}: HTTP ${res.status}${Array.isArray(errors) ? `: ${errors.join('; ')}` : ''}`);
  }
  return parsed;
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/_standin/health`, { signal: AbortSignal.timeout(1_000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}
