// The stand-in's OAuth2/OIDC side on its own (the Vault login through it is test/e2e/oidc-login.test.ts):
// authorize, token (client_secret_basic and _post, PKCE), ID token signature and claims,
// userinfo, revocation, providers without signing key or secret, failure injection, the
// admin API and the state file.
import { createHash, createHmac, createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeJwt } from '../../../test/authentik-standin/jwt.ts';
import { createStandin, listenOnFreePort as listen, type StandinServer } from '../../../test/authentik-standin/server.ts';

const TOKEN = 'oauth-test-api-token';
const CALLBACK = 'http://127.0.0.1:8250/oidc/callback';
let server: StandinServer;
let base: string;

async function close(s: StandinServer): Promise<void> {
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
}

beforeAll(async () => {
  server = createStandin({ apiToken: TOKEN });
  base = await listen(server);
  server.standin.createProvider({ name: 'Public', slug: 'public-app', client_type: 'public' });
  server.standin.createProvider({ name: 'No key', slug: 'nokey-app', signing_key: false });
});
afterAll(() => close(server));
beforeEach(() => server.standin.clearFailures());

const provider = (pk = 1) => server.standin.provider(pk)!;

async function authorize(q: Record<string, string>): Promise<Response> {
  const u = new URL(`${base}/application/o/authorize/`);
  for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
  return fetch(u, { redirect: 'manual' });
}

async function getCode(pk = 1, extra: Record<string, string> = {}): Promise<string> {
  const res = await authorize({ client_id: provider(pk).client_id, redirect_uri: CALLBACK, response_type: 'code', scope: 'openid email profile', state: 'st4te', nonce: 'n0nce', ...extra });
  expect(res.status).toBe(302);
  const loc = new URL(res.headers.get('location')!);
  expect(loc.searchParams.get('state')).toBe('st4te');
  return loc.searchParams.get('code')!;
}

async function token(form: Record<string, string>, basic?: [string, string]): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${base}/application/o/token/`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-www-form-urlencoded',
      ...(basic ? { Authorization: `Basic ${Buffer.from(`${basic[0]}:${basic[1]}`).toString('base64')}` } : {}),
    },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

function verifyRs256(jwt: string, jwks: { keys: Record<string, unknown>[] }): boolean {
  const [h, c, s] = jwt.split('.');
  const kid = decodeJwt(jwt).header.kid;
  const jwk = jwks.keys.find((k) => k.kid === kid);
  if (!jwk) return false;
  const key = createPublicKey({ key: jwk as unknown as import('node:crypto').JsonWebKey, format: 'jwk' });
  return verify('sha256', Buffer.from(`${h}.${c}`), key, Buffer.from(s!, 'base64url'));
}

describe('authorization code flow', () => {
  it('redirects at once with code and state; refuses unknown clients and redirect URIs with an error page', async () => {
    expect(await getCode()).toMatch(/^[A-Za-z0-9]{64}$/);
    expect((await authorize({ client_id: 'nope', redirect_uri: CALLBACK, response_type: 'code' })).status).toBe(400);
    const bad = await authorize({ client_id: provider().client_id, redirect_uri: 'http://evil.test/cb', response_type: 'code' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('location')).toBeNull();
    const implicit = await authorize({ client_id: provider().client_id, redirect_uri: CALLBACK, response_type: 'token', state: 's' });
    expect(new URL(implicit.headers.get('location')!).searchParams.get('error')).toBe('unsupported_response_type');
  });

  it('exchanges a code with client_secret_basic for an RS256 ID token that verifies against the JWKS', async () => {
    const p = provider();
    const code = await getCode();
    const r = await token({ grant_type: 'authorization_code', code, redirect_uri: CALLBACK }, [p.client_id, p.client_secret]);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    const idToken = r.body.id_token as string;
    const jwks = (await (await fetch(`${base}/application/o/vault/jwks/`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(typeof jwks.keys[0]!.kid).toBe('string');
    expect(verifyRs256(idToken, jwks)).toBe(true);
    const { header, claims } = decodeJwt(idToken);
    expect(header).toMatchObject({ alg: 'RS256', kid: jwks.keys[0]!.kid });
    expect(claims).toMatchObject({
      iss: `${base}/application/o/vault/`,
      aud: p.client_id,
      nonce: 'n0nce',
      email: 'vk-test-user@example.test',
      preferred_username: 'vk-test-user',
      groups: ['vaultkeeper-operators'],
    });
    expect(typeof claims.sub).toBe('string');
    expect((claims.exp as number) - (claims.iat as number)).toBe(3600);
    const atHash = createHash('sha256').update(r.body.access_token as string).digest().subarray(0, 16).toString('base64url');
    expect(claims.at_hash).toBe(atHash);

    const info = await fetch(`${base}/application/o/userinfo/`, { headers: { Authorization: `Bearer ${r.body.access_token as string}` } });
    expect(await info.json()).toMatchObject({ sub: claims.sub, email: 'vk-test-user@example.test', groups: ['vaultkeeper-operators'] });
  });

  it('accepts client_secret_post; a code is single-use', async () => {
    const p = provider();
    const code = await getCode();
    const form = { grant_type: 'authorization_code', code, redirect_uri: CALLBACK, client_id: p.client_id, client_secret: p.client_secret };
    expect((await token(form)).status).toBe(200);
    const again = await token(form);
    expect(again).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('rejects a wrong secret and the previous secret after a rotation, with invalid_client (HTTP 400, as Authentik)', async () => {
    const p = provider();
    const previous = p.client_secret;
    server.standin.rotateSecret(1);
    for (const secret of ['wrong', previous]) {
      const viaBasic = await token({ grant_type: 'authorization_code', code: await getCode(), redirect_uri: CALLBACK }, [p.client_id, secret]);
      expect(viaBasic).toMatchObject({ status: 400, body: { error: 'invalid_client' } });
      const viaPost = await token({ grant_type: 'authorization_code', code: await getCode(), redirect_uri: CALLBACK, client_id: p.client_id, client_secret: secret });
      expect(viaPost).toMatchObject({ status: 400, body: { error: 'invalid_client' } });
    }
    expect(server.standin.state.previousSecrets['1']).toContain(previous);
    const ok = await token({ grant_type: 'authorization_code', code: await getCode(), redirect_uri: CALLBACK }, [p.client_id, p.client_secret]);
    expect(ok.status).toBe(200);
  });

  it('checks PKCE (S256) the way Vault uses it', async () => {
    const p = provider();
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const pkce = { code_challenge: challenge, code_challenge_method: 'S256' };
    const bad = await token({ grant_type: 'authorization_code', code: await getCode(1, pkce), redirect_uri: CALLBACK, code_verifier: 'nope' }, [p.client_id, p.client_secret]);
    expect(bad.body.error).toBe('invalid_grant');
    const missing = await token({ grant_type: 'authorization_code', code: await getCode(1, pkce), redirect_uri: CALLBACK }, [p.client_id, p.client_secret]);
    expect(missing.body.error).toBe('invalid_grant');
    const good = await token({ grant_type: 'authorization_code', code: await getCode(1, pkce), redirect_uri: CALLBACK, code_verifier: verifier }, [p.client_id, p.client_secret]);
    expect(good.status).toBe(200);
  });

  it('a redirect_uri at the token endpoint must be the one the code was issued for', async () => {
    const p = provider();
    const r = await token({ grant_type: 'authorization_code', code: await getCode(), redirect_uri: 'http://localhost:8250/oidc/callback' }, [p.client_id, p.client_secret]);
    expect(r.body.error).toBe('invalid_grant');
  });

  it('a public client needs no secret', async () => {
    const p = provider(2);
    const r = await token({ grant_type: 'authorization_code', code: await getCode(2), redirect_uri: CALLBACK, client_id: p.client_id });
    expect(r.status).toBe(200);
  });

  it('a provider without signing key signs HS256 with the client secret and publishes no key (like Authentik)', async () => {
    const p = provider(3);
    const r = await token({ grant_type: 'authorization_code', code: await getCode(3), redirect_uri: CALLBACK }, [p.client_id, p.client_secret]);
    const [h, c, s] = (r.body.id_token as string).split('.');
    expect(decodeJwt(r.body.id_token as string).header.alg).toBe('HS256');
    expect(createHmac('sha256', p.client_secret).update(`${h}.${c}`).digest('base64url')).toBe(s);
    expect(await (await fetch(`${base}/application/o/nokey-app/jwks/`)).json()).toEqual({});
  });
});

describe('revocation', () => {
  it('200 {} for valid client credentials (token known or not), 401 invalid_client otherwise; revoked tokens stop working', async () => {
    const p = provider();
    const r = await token({ grant_type: 'authorization_code', code: await getCode(), redirect_uri: CALLBACK }, [p.client_id, p.client_secret]);
    const at = r.body.access_token as string;
    const revoke = (creds: [string, string], t: string) =>
      fetch(`${base}/application/o/revoke/`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(creds.join(':')).toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
        body: `token=${t}`,
      });
    const unknown = await revoke([p.client_id, p.client_secret], 'not-a-token');
    expect([unknown.status, await unknown.json()]).toEqual([200, {}]);
    const wrong = await revoke([p.client_id, 'wrong'], at);
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: string }).error).toBe('invalid_client');
    expect((await revoke([p.client_id, p.client_secret], at)).status).toBe(200);
    const info = await fetch(`${base}/application/o/userinfo/`, { headers: { Authorization: `Bearer ${at}` } });
    expect(info.status).toBe(401);
  });
});

describe('failure injection and admin API', () => {
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`${base}/_standin${path}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) } });

  it('POST /_standin/fail fails the next N matching requests, then things work again', async () => {
    const res = await admin('/fail', { method: 'POST', body: JSON.stringify({ method: 'GET', path: '/api/v3/providers/oauth2/1/', status: 500, times: 2 }) });
    expect(res.status).toBe(201);
    const get = () => fetch(`${base}/api/v3/providers/oauth2/1/`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect((await get()).status).toBe(500);
    expect((await get()).status).toBe(500);
    expect((await get()).status).toBe(200);
  });

  it('status 0 drops the connection; prefix paths match with *', async () => {
    await admin('/fail', { method: 'POST', body: JSON.stringify({ path: '/application/o/*', status: 0 }) });
    await expect(fetch(`${base}/application/o/vault/jwks/`)).rejects.toThrow();
    expect((await fetch(`${base}/application/o/vault/jwks/`)).status).toBe(200);
  });

  it('rotating a secret "in the UI", creating providers and reading state need the token', async () => {
    expect((await fetch(`${base}/_standin/state`)).status).toBe(403);
    const rot = (await (await admin('/providers/1/secret', { method: 'POST', body: JSON.stringify({ client_secret: 'ChosenByTheAdmin1' }) })).json()) as { client_secret: string };
    expect(rot.client_secret).toBe('ChosenByTheAdmin1');
    const random = (await (await admin('/providers/1/secret', { method: 'POST' })).json()) as { client_secret: string };
    expect(random.client_secret).toMatch(/^[A-Za-z0-9]{128}$/);
    const created = await admin('/providers', { method: 'POST', body: JSON.stringify({ name: 'Neg', slug: 'neg', client_type: 'public', signing_key: false }) });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { provider: { client_type: string; signing_key: null } };
    expect(body.provider).toMatchObject({ client_type: 'public', signing_key: null });
    const state = (await (await admin('/state')).json()) as { providers: { pk: number; client_secret: string }[]; keyPairs: Record<string, unknown>[] };
    expect(state.providers.find((p) => p.pk === 1)?.client_secret).toBe(random.client_secret);
    expect(state.keyPairs[0]).not.toHaveProperty('privateKeyPem');
    const user = await admin('/user', { method: 'PUT', body: JSON.stringify({ groups: ['a', 'b'] }) });
    expect(((await user.json()) as { groups: string[] }).groups).toEqual(['a', 'b']);
    server.standin.setUser({ groups: ['vaultkeeper-operators'] });
  });
});

describe('state file', () => {
  it('persists providers, secrets and the signing key (0600) across restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vk-standin-'));
    try {
      const stateFile = join(dir, 'state.json');
      const a = createStandin({ apiToken: TOKEN, stateFile });
      const secret = a.standin.rotateSecret(1, 'PersistedSecret42');
      const kid = a.standin.state.keyPairs[0]!.kid;
      expect(statSync(stateFile).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(stateFile, 'utf8')).providers[0].client_secret).toBe(secret);
      const b = createStandin({ apiToken: TOKEN, stateFile });
      const bBase = await listen(b);
      try {
        expect(b.standin.provider(1)!.client_secret).toBe('PersistedSecret42');
        const jwks = (await (await fetch(`${bBase}/application/o/vault/jwks/`)).json()) as { keys: { kid: string }[] };
        expect(jwks.keys[0]!.kid).toBe(kid);
      } finally {
        await close(b);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
