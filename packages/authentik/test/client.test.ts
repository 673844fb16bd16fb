// The typed Authentik client against the stand-in, started in-process on a free port.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createStandin, listenOnFreePort, type StandinServer } from '../../../test/authentik-standin/server.ts';
import { AuthentikError, createAuthentikClient, type AuthentikClientOptions } from '../src/index.ts';

const TOKEN = 'client-test-api-token-0123456789';
let server: StandinServer;
let base: string;

beforeAll(async () => {
  server = createStandin({ apiToken: TOKEN });
  base = await listenOnFreePort(server);
  server.standin.createProvider({ name: 'Other', slug: 'other' });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  server.standin.clearFailures();
  server.standin.clearRequests();
});

const client = (o: Partial<AuthentikClientOptions> = {}) => createAuthentikClient({ baseUrl: base, token: TOKEN, timeoutMs: 5_000, ...o });
const vault = () => server.standin.provider(1)!;

async function caught(p: Promise<unknown>): Promise<AuthentikError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AuthentikError);
    return err as AuthentikError;
  }
  throw new Error('expected an AuthentikError');
}

/** No error text may hold the API token or a secret. */
function expectClean(err: Error, ...secrets: string[]): void {
  const text = `${err.message} ${String((err as AuthentikError).detail)} ${JSON.stringify(err)}`;
  for (const s of [TOKEN, ...secrets]) expect(text).not.toContain(s);
}

describe('reads', () => {
  it('gets a provider, keeping only the checked fields', async () => {
    const p = await client().getProvider(1);
    expect(p).toEqual({
      pk: 1,
      name: 'Vault',
      client_type: 'confidential',
      client_id: vault().client_id,
      client_secret: vault().client_secret,
      signing_key: vault().signing_key,
      assigned_application_slug: 'vault',
      assigned_application_name: 'Vault',
      authorization_flow: vault().authorization_flow,
      redirect_uris: vault().redirect_uris,
    });
  });

  it('finds a provider by client_id, or undefined', async () => {
    expect((await client().findProviderByClientId(vault().client_id))?.pk).toBe(1);
    expect(await client().findProviderByClientId('no-such-client')).toBeUndefined();
  });

  it('does not trust the server to filter: a server ignoring client_id still yields the right provider', async () => {
    const seen: string[] = [];
    const dropFilter = (req: Request) => {
      const u = new URL(req.url);
      u.searchParams.delete('client_id');
      seen.push(u.search);
      return fetch(new Request(u, req));
    };
    const p = await client({ fetch: dropFilter as typeof fetch }).findProviderByClientId(server.standin.provider(2)!.client_id);
    expect(p?.pk).toBe(2);
    expect(seen.length).toBeGreaterThan(0);
  });

  it('refuses an ambiguous client_id', async () => {
    const { provider } = server.standin.createProvider({ name: 'Dup', slug: 'dup', client_id: 'dup-client' });
    server.standin.createProvider({ name: 'Dup2', slug: 'dup2', client_id: 'dup-client' });
    const err = await caught(client().findProviderByClientId('dup-client'));
    expect(err.kind).toBe('schema');
    expect(err.message).toContain(String(provider.pk));
  });

  it('gets an application and the OpenID discovery document (issuer with trailing slash, no API token sent)', async () => {
    expect(await client().getApplication('vault')).toEqual({ pk: server.standin.application('vault')!.pk, name: 'Vault', slug: 'vault', provider: 1 });
    let auth: string | null = 'unset';
    const spy = (req: Request) => {
      auth = req.headers.get('authorization');
      return fetch(req);
    };
    const d = await client({ fetch: spy as typeof fetch }).getOpenIdConfiguration('vault');
    expect(d.issuer).toBe(`${base}/application/o/vault/`);
    expect(auth).toBeNull();
  });

  it('rejects slugs and ids that would reshape the path', async () => {
    await expect(client().getApplication('../admin')).rejects.toThrow(TypeError);
    await expect(client().getProvider(0)).rejects.toThrow(TypeError);
    await expect(client().getProvider(1.5)).rejects.toThrow(TypeError);
  });
});

describe('setProviderClientSecret', () => {
  it('PATCHes client_secret and nothing else, and the new secret is the one Authentik accepts', async () => {
    const old = vault().client_secret;
    const next = 'N3wSecretFromTheRotationJob0123456789';
    const p = await client().setProviderClientSecret(1, next);
    expect(p.client_secret).toBe(next);
    const patch = server.standin.requests.find((r) => r.method === 'PATCH');
    expect(patch?.bodyKeys).toEqual(['client_secret']);
    expect(await client().checkClientSecret(p.client_id, next)).toBe(true);
    expect(await client().checkClientSecret(p.client_id, old)).toBe(false);
  });

  it('reports a validation error by field without echoing the secret', async () => {
    const long = `S${'x'.repeat(300)}`;
    const err = await caught(client().setProviderClientSecret(1, long));
    expect(err).toMatchObject({ kind: 'http', status: 400, method: 'PATCH', path: '/api/v3/providers/oauth2/1/' });
    expect(err.detail).toBe('client_secret: Ensure this field has no more than 255 characters.');
    expectClean(err, long);
  });

  it('scrubs the secret and the token even when the server echoes them', async () => {
    const secret = 'EchoedSecret987654321';
    server.standin.fail({ method: 'PATCH', path: '/api/v3/providers/oauth2/1/', status: 500, body: { detail: `cannot store ${secret} for ${TOKEN}` } });
    const err = await caught(client().setProviderClientSecret(1, secret));
    expect(err.status).toBe(500);
    expect(err.retryable).toBe(true);
    expect(err.detail).toContain('[REDACTED]');
    expectClean(err, secret);
  });
});

describe('checkClientSecret', () => {
  it('true for the current secret, false for a wrong one or an unknown client', async () => {
    expect(await client().checkClientSecret(vault().client_id, vault().client_secret)).toBe(true);
    expect(await client().checkClientSecret(vault().client_id, 'wrong')).toBe(false);
    expect(await client().checkClientSecret('unknown-client', 'whatever')).toBe(false);
  });

  it('uses HTTP Basic with the raw credentials and never sends the API token there', async () => {
    const headers: Record<string, string | null> = {};
    const spy = (req: Request) => {
      headers.authorization = req.headers.get('authorization');
      headers.contentType = req.headers.get('content-type');
      return fetch(req);
    };
    await client({ fetch: spy as typeof fetch }).checkClientSecret(vault().client_id, vault().client_secret);
    expect(headers.authorization).toBe(`Basic ${Buffer.from(`${vault().client_id}:${vault().client_secret}`).toString('base64')}`);
    expect(headers.contentType).toBe('application/x-www-form-urlencoded');
    const r = server.standin.requests.find((x) => x.path === '/application/o/revoke/');
    expect(r).toMatchObject({ clientAuth: 'basic', status: 200 });
    expect(r?.bodyKeys).toEqual(['token', 'token_type_hint']);
  });

  it('a secret rotated in the UI behind our back makes the old one fail', async () => {
    const before = vault().client_secret;
    server.standin.rotateSecret(1);
    expect(await client().checkClientSecret(vault().client_id, before)).toBe(false);
    expect(await client().checkClientSecret(vault().client_id, vault().client_secret)).toBe(true);
  });

  it('throws on anything but 200 or 401 invalid_client, without the secret in the error', async () => {
    server.standin.fail({ method: 'POST', path: '/application/o/revoke/', status: 502 });
    const err = await caught(client().checkClientSecret(vault().client_id, vault().client_secret));
    expect(err).toMatchObject({ kind: 'http', status: 502, retryable: true });
    expectClean(err, vault().client_secret);

    server.standin.fail({ method: 'POST', path: '/application/o/revoke/', status: 401, body: { error: 'something_else' } });
    const err401 = await caught(client().checkClientSecret(vault().client_id, vault().client_secret));
    expect(err401.status).toBe(401);
    expectClean(err401, vault().client_secret);
  });
});

describe('errors', () => {
  it('403 with a wrong token names method, path and Authentik detail, not the token', async () => {
    const bad = 'wrong-token-abcdef';
    const err = await caught(client({ token: bad }).getProvider(1));
    expect(err).toMatchObject({ kind: 'http', status: 403, method: 'GET', path: '/api/v3/providers/oauth2/1/', detail: 'Token invalid/expired', retryable: false });
    expect(err.message).toBe('Authentik GET /api/v3/providers/oauth2/1/ failed (HTTP 403): Token invalid/expired');
    expectClean(err, bad);
  });

  it('404 for an unknown provider or application', async () => {
    expect(await caught(client().getProvider(999))).toMatchObject({ status: 404, retryable: false });
    expect(await caught(client().getApplication('nope'))).toMatchObject({ status: 404 });
  });

  it('a dropped connection is a retryable transport error', async () => {
    server.standin.fail({ method: 'GET', path: '/api/v3/providers/oauth2/1/', status: 0 });
    const err = await caught(client().getProvider(1));
    expect(err).toMatchObject({ kind: 'transport', status: 0, retryable: true });
    expectClean(err);
  });

  it('no answer within timeoutMs is a retryable timeout', async () => {
    server.standin.fail({ method: 'GET', path: '/api/v3/providers/oauth2/1/', status: 200, delayMs: 1_000 });
    const err = await caught(client({ timeoutMs: 100 }).getProvider(1));
    expect(err).toMatchObject({ kind: 'timeout', status: 0, retryable: true });
  });

  it('nothing listening is a transport error', async () => {
    const err = await caught(client({ baseUrl: 'http://127.0.0.1:1' }).getProvider(1));
    expect(err.kind).toBe('transport');
  });

  it('a 2xx that lacks a relied-on field is a schema error naming the field, not its value', async () => {
    const { client_id: _drop, ...rest } = (await (await fetch(`${base}/api/v3/providers/oauth2/1/`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()) as Record<string, unknown>;
    server.standin.fail({ method: 'GET', path: '/api/v3/providers/oauth2/1/', status: 200, body: rest });
    const err = await caught(client().getProvider(1));
    expect(err.kind).toBe('schema');
    expect(err.detail).toContain('client_id');
    expectClean(err, vault().client_secret);
  });

  it('a redirect (a proxy or login page answering) is an error, not followed', async () => {
    server.standin.fail({ method: 'GET', path: '/api/v3/core/applications/vault/', status: 302, body: '' });
    const err = await caught(client().getApplication('vault'));
    expect(err.status).toBe(302);
  });

  it('the caller signal aborts a call', async () => {
    server.standin.fail({ method: 'GET', path: '/api/v3/providers/oauth2/1/', status: 200, delayMs: 1_000 });
    const ac = new AbortController();
    const p = client({ signal: ac.signal }).getProvider(1);
    ac.abort(new Error('SIGTERM'));
    await expect(p).rejects.toThrow();
    await expect(p).rejects.not.toBeInstanceOf(AuthentikError);
  });

  it('validates its options', () => {
    expect(() => createAuthentikClient({ baseUrl: 'ftp://x', token: 't', timeoutMs: 1 })).toThrow(TypeError);
    expect(() => createAuthentikClient({ baseUrl: 'https://u:p@x', token: 't', timeoutMs: 1 })).toThrow(TypeError);
    expect(() => createAuthentikClient({ baseUrl: 'https://x', token: '', timeoutMs: 1 })).toThrow(TypeError);
    expect(() => createAuthentikClient({ baseUrl: 'https://x', token: 't', timeoutMs: 0 })).toThrow(TypeError);
    expect(() => createAuthentikClient({ baseUrl: 'https://x/', token: 't', timeoutMs: 1 })).not.toThrow();
  });
});
