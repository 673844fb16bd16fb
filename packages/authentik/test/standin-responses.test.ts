// Every API answer of the Authentik stand-in, successes and errors, validated against the
// response schemas of Authentik's own upstream schema.yml (ajv, OpenAPI 3.0 converted to JSON
// Schema). A stand-in that drifts from Authentik would let the client pass tests it would fail
// against the real thing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStandin, listenOnFreePort, type StandinServer } from '../../../test/authentik-standin/server.ts';
import { compileOpenApiSchema, loadSubset, loadUpstream, upstreamResponseSchema, type Json, type Obj } from './upstream.ts';

const upstream = loadUpstream();
const TOKEN = 'standin-test-token';

let server: StandinServer;
let base: string;

beforeAll(async () => {
  server = createStandin({ apiToken: TOKEN });
  base = await listenOnFreePort(server);
  // A second and third provider, so that paging and the negative variants have something to show.
  server.standin.createProvider({ name: 'Public client', slug: 'public-app', client_type: 'public' });
  server.standin.createProvider({ name: 'No signing key', slug: 'nokey-app', signing_key: false });
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

type Call = { method: string; template: string; url: string; auth?: string | null; body?: string; contentType?: string };

async function send(c: Call): Promise<{ status: number; body: Json }> {
  const headers: Record<string, string> = {};
  const auth = c.auth === undefined ? `Bearer ${TOKEN}` : c.auth;
  if (auth !== null) headers.Authorization = auth;
  if (c.body !== undefined) headers['Content-Type'] = c.contentType ?? 'application/json';
  const res = await fetch(`${base}${c.url}`, { method: c.method, headers, ...(c.body !== undefined ? { body: c.body } : {}) });
  expect(res.headers.get('content-type')).toBe('application/json');
  return { status: res.status, body: (await res.json()) as Json };
}

const covered = new Set<string>();

/** Validates one answer against upstream's schema for that operation and status. */
function validate(c: Call, status: number, body: Json): void {
  let schema = upstreamResponseSchema(upstream!, c.method, c.template, status);
  if (schema === undefined && (status === 404 || status === 405)) {
    // Upstream declares no 404/405 (drf-spectacular leaves them out), but DRF renders NotFound
    // and MethodNotAllowed through the same exception handler as the declared 403: a GenericError.
    schema = { $ref: '#/components/schemas/GenericError' };
  }
  expect(schema, `upstream declares no ${status} for ${c.method} ${c.template}`).toBeDefined();
  const check = compileOpenApiSchema(upstream!, schema!);
  const ok = check(body);
  expect(ok, `${c.method} ${c.url} -> ${status}: ${JSON.stringify(check.errors, null, 1)}`).toBe(true);
  covered.add(`${c.method} ${c.template} ${status}`);
}

async function expectValid(c: Call, status: number): Promise<Json> {
  const r = await send(c);
  expect(r.status, `${c.method} ${c.url}: ${JSON.stringify(r.body)}`).toBe(status);
  validate(c, r.status, r.body);
  return r.body;
}

const LIST = '/api/v3/providers/oauth2/';
const ONE = '/api/v3/providers/oauth2/{id}/';
const APP = '/api/v3/core/applications/{slug}/';

describe.skipIf(!upstream)('stand-in API responses match upstream Authentik schemas', () => {
  it('lists providers (all, filtered by client_id, empty, paged)', async () => {
    const all = (await expectValid({ method: 'GET', template: LIST, url: LIST }, 200)) as Obj;
    expect((all.results as Obj[]).length).toBe(3);
    expect(all.pagination).toEqual({ next: 0, previous: 0, count: 3, current: 1, total_pages: 1, start_index: 1, end_index: 3 });

    const clientId = server.standin.provider(1)!.client_id;
    const one = (await expectValid({ method: 'GET', template: LIST, url: `${LIST}?client_id=${clientId}` }, 200)) as Obj;
    expect((one.results as Obj[]).map((p) => p.pk)).toEqual([1]);

    const none = (await expectValid({ method: 'GET', template: LIST, url: `${LIST}?client_id=nope` }, 200)) as Obj;
    expect(none.results).toEqual([]);
    expect(none.pagination).toEqual({ next: 0, previous: 0, count: 0, current: 1, total_pages: 1, start_index: 0, end_index: 0 });

    const page2 = (await expectValid({ method: 'GET', template: LIST, url: `${LIST}?page=2&page_size=1` }, 200)) as Obj;
    expect(page2.pagination).toEqual({ next: 3, previous: 1, count: 3, current: 2, total_pages: 3, start_index: 2, end_index: 2 });

    await expectValid({ method: 'GET', template: LIST, url: `${LIST}?page=9` }, 404);
  });

  it('gets a confidential provider, a public one and one without signing key', async () => {
    const p1 = (await expectValid({ method: 'GET', template: ONE, url: '/api/v3/providers/oauth2/1/' }, 200)) as Obj;
    expect(p1.client_type).toBe('confidential');
    expect(typeof p1.signing_key).toBe('string');
    expect(p1.assigned_application_slug).toBe('vault');
    const p2 = (await expectValid({ method: 'GET', template: ONE, url: '/api/v3/providers/oauth2/2/' }, 200)) as Obj;
    expect(p2.client_type).toBe('public');
    const p3 = (await expectValid({ method: 'GET', template: ONE, url: '/api/v3/providers/oauth2/3/' }, 200)) as Obj;
    expect(p3.signing_key).toBeNull();
    await expectValid({ method: 'GET', template: ONE, url: '/api/v3/providers/oauth2/999/' }, 404);
  });

  it('patches client_secret, and rejects an invalid patch with a ValidationError', async () => {
    const patched = (await expectValid({ method: 'PATCH', template: ONE, url: '/api/v3/providers/oauth2/1/', body: JSON.stringify({ client_secret: 'newsecret123' }) }, 200)) as Obj;
    expect(patched.client_secret).toBe('newsecret123');
    const bad = (await expectValid({ method: 'PATCH', template: ONE, url: '/api/v3/providers/oauth2/1/', body: JSON.stringify({ client_secret: 'x'.repeat(256) }) }, 400)) as Obj;
    expect(Object.keys(bad)).toEqual(['client_secret']);
    await expectValid({ method: 'PATCH', template: ONE, url: '/api/v3/providers/oauth2/1/', body: '{not json' }, 400);
    await expectValid({ method: 'PATCH', template: ONE, url: '/api/v3/providers/oauth2/999/', body: '{}' }, 404);
    await expectValid({ method: 'DELETE', template: ONE, url: '/api/v3/providers/oauth2/1/' }, 405);
  });

  it('gets an application by slug', async () => {
    const app = (await expectValid({ method: 'GET', template: APP, url: '/api/v3/core/applications/vault/' }, 200)) as Obj;
    expect(app.provider).toBe(1);
    await expectValid({ method: 'GET', template: APP, url: '/api/v3/core/applications/nope/' }, 404);
  });

  it('answers 403 with a GenericError without a token, with a wrong token, with another scheme', async () => {
    const variants: { auth: string | null; detail: string }[] = [
      { auth: null, detail: 'Authentication credentials were not provided.' },
      { auth: 'Bearer wrong', detail: 'Token invalid/expired' },
      { auth: `Basic ${Buffer.from('a:b').toString('base64')}`, detail: 'Unsupported authentication type' },
    ];
    const calls: Call[] = [
      { method: 'GET', template: LIST, url: LIST },
      { method: 'GET', template: ONE, url: '/api/v3/providers/oauth2/1/' },
      { method: 'PATCH', template: ONE, url: '/api/v3/providers/oauth2/1/', body: JSON.stringify({ client_secret: 'nope' }) },
      { method: 'GET', template: APP, url: '/api/v3/core/applications/vault/' },
    ];
    for (const c of calls) {
      for (const v of variants) {
        const body = (await expectValid({ ...c, auth: v.auth }, 403)) as Obj;
        expect(body.detail).toBe(v.detail);
      }
    }
    expect(server.standin.provider(1)!.client_secret, 'a rejected PATCH changes nothing').toBe('newsecret123');
  });

  it('the validator is not vacuous: it rejects a provider that lacks a required field or has a wrong type', async () => {
    const good = (await send({ method: 'GET', template: ONE, url: '/api/v3/providers/oauth2/1/' })).body as Obj;
    const check = compileOpenApiSchema(upstream!, upstreamResponseSchema(upstream!, 'GET', ONE, 200)!);
    expect(check(good)).toBe(true);
    const { pk: _pk, ...noPk } = good;
    expect(check(noPk)).toBe(false);
    expect(check({ ...good, redirect_uris: 'http://x' })).toBe(false);
    expect(check({ ...good, client_type: 'secretive' })).toBe(false);
    expect(check({ ...good, signing_key: 'not-a-uuid' })).toBe(false);
  });

  it('covered 200 and 403 of every API operation and 400 of PATCH', () => {
    for (const op of [`GET ${LIST}`, `GET ${ONE}`, `PATCH ${ONE}`, `GET ${APP}`]) {
      expect(covered).toContain(`${op} 200`);
      expect(covered).toContain(`${op} 403`);
    }
    expect(covered).toContain(`PATCH ${ONE} 400`);
  });
});

if (!upstream) {
  describe('stand-in API responses match upstream Authentik schemas', () => {
    it.skip('SKIPPED LOUDLY: ../shared/authentik/schema.yml is absent, no response was validated against upstream', () => {});
  });
}

describe('stand-in OAuth responses match the subset (not in upstream schema.yml)', () => {
  const subset = loadSubset();
  const schemaOf = (name: string) => compileOpenApiSchema(subset, { $ref: `#/components/schemas/${name}` });

  it('discovery document', async () => {
    const res = await fetch(`${base}/application/o/vault/.well-known/openid-configuration`);
    const body = (await res.json()) as Obj;
    const check = schemaOf('VaultkeeperOpenIDConfiguration');
    expect(check(body), JSON.stringify(check.errors)).toBe(true);
    expect(body.issuer).toBe(`${base}/application/o/vault/`);
    expect(body.id_token_signing_alg_values_supported).toEqual(['RS256']);
    const nokey = (await (await fetch(`${base}/application/o/nokey-app/.well-known/openid-configuration`)).json()) as Obj;
    expect(nokey.id_token_signing_alg_values_supported).toEqual(['HS256']);
    expect((await fetch(`${base}/application/o/nope/.well-known/openid-configuration`)).status).toBe(404);
  });

  it('revocation: 401 invalid_client body', async () => {
    const res = await fetch(`${base}/application/o/revoke/`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from('x:y').toString('base64')}`, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'token=abc',
    });
    expect(res.status).toBe(401);
    const check = schemaOf('VaultkeeperOAuth2Error');
    const body = (await res.json()) as Obj;
    expect(check(body), JSON.stringify(check.errors)).toBe(true);
    expect(body.error).toBe('invalid_client');
  });
});
