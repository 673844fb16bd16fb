import { randomBytes } from 'node:crypto';
import createClient from 'openapi-fetch';
import { z } from 'zod';
import { AuthentikError } from './errors.ts';
import {
  applicationSchema,
  oauth2ErrorSchema,
  oauth2ProviderSchema,
  openIdConfigurationSchema,
  providerListSchema,
  type Application,
  type OAuth2Provider,
  type OpenIdConfiguration,
} from './models.ts';
import type { paths } from './schema.gen.ts';

export interface AuthentikClientOptions {
  /** Authentik's origin, e.g. `https://auth.example.com` (no `/api/v3`). */
  baseUrl: string;
  /** An API token (intent API) of a user allowed to view and change the provider. */
  token: string;
  /** Overall limit for each call, from sending the request to reading the whole body. */
  timeoutMs: number;
  /** Replaces globalThis.fetch (tests, proxies). */
  fetch?: typeof globalThis.fetch;
  /** Aborts every in-flight and later call, e.g. on SIGTERM. */
  signal?: AbortSignal;
}

export interface AuthentikClient {
  getProvider(id: number): Promise<OAuth2Provider>;
  /** The provider whose client_id is exactly `clientId`, or undefined when there is none. */
  findProviderByClientId(clientId: string): Promise<OAuth2Provider | undefined>;
  getApplication(slug: string): Promise<Application>;
  /** PATCHes the provider with `{ client_secret }` and nothing else; returns the provider as Authentik now has it. */
  setProviderClientSecret(id: number, secret: string): Promise<OAuth2Provider>;
  /**
   * Whether `secret` is the current client secret of `clientId`, asked of Authentik's RFC 7009
   * revocation endpoint with a random token: 200 means the credentials are valid (an unknown
   * token is not an error there), 401 `invalid_client` means they are not. Anything else throws.
   */
  checkClientSecret(clientId: string, secret: string): Promise<boolean>;
  /** The application's OpenID discovery document (issuer, endpoints). */
  getOpenIdConfiguration(slug: string): Promise<OpenIdConfiguration>;
}

/** RFC 7009: the body of a 200 is irrelevant; Authentik sends `{}`. */
const revokeOkSchema = z.unknown();

/** Longest `detail` kept from an error body; Authentik's are one sentence. */
const MAX_DETAIL = 300;

export function createAuthentikClient(opts: AuthentikClientOptions): AuthentikClient {
  const baseUrl = normaliseBaseUrl(opts.baseUrl);
  if (!opts.token) throw new TypeError('createAuthentikClient: token is empty');
  if (!(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) {
    throw new TypeError('createAuthentikClient: timeoutMs must be a positive number');
  }
  const fetchImpl = opts.fetch ?? globalThis.fetch;
  const api = createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${opts.token}`, Accept: 'application/json' },
    // openapi-fetch hands fetch a Request; pass it through so a custom fetch sees the same call.
    fetch: (request: Request) => fetchImpl(request),
    // A redirect from an API endpoint means a proxy or login page is answering instead of
    // Authentik; treat it as an error instead of following it with credentials attached.
    redirect: 'manual',
  });

  /** Strings that must never appear in an error: the API token and any secret of this call. */
  const scrub = (text: string, extra: string[] = []): string => {
    let out = text;
    for (const s of [opts.token, ...extra]) if (s) out = out.split(s).join('[REDACTED]');
    return out.length > MAX_DETAIL ? `${out.slice(0, MAX_DETAIL)}…` : out;
  };

  async function call<T>(
    method: string,
    path: string,
    schema: z.ZodType<T>,
    okStatuses: number[],
    send: (signal: AbortSignal) => Promise<{ data?: unknown; error?: unknown; response: Response }>,
    secrets: string[] = [],
  ): Promise<{ status: number; value: T | undefined; body: unknown }> {
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    let result: { data?: unknown; error?: unknown; response: Response };
    try {
      result = await send(signal);
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const kind = timeout.aborted ? 'timeout' : 'transport';
      throw new AuthentikError({ kind, status: 0, method, path, detail: transportDetail(err, kind), cause: err });
    }
    const status = result.response.status;
    const body = result.data ?? result.error;
    if (!okStatuses.includes(status)) {
      const detail = errorDetail(body);
      throw new AuthentikError({ kind: 'http', status, method, path, ...(detail ? { detail: scrub(detail, secrets) } : {}) });
    }
    if (status < 200 || status > 299) return { status, value: undefined, body };
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.code}`).join(', ');
      throw new AuthentikError({
        kind: 'schema',
        status,
        method,
        path,
        detail: scrub(`response did not match the expected shape (${fields})`, secrets),
      });
    }
    return { status, value: parsed.data, body };
  }

  async function getProvider(id: number): Promise<OAuth2Provider> {
    assertId(id);
    const path = `/api/v3/providers/oauth2/${id}/`;
    const r = await call('GET', path, oauth2ProviderSchema, [200], (signal) =>
      api.GET('/api/v3/providers/oauth2/{id}/', { params: { path: { id } }, signal }),
    );
    return r.value as OAuth2Provider;
  }

  async function findProviderByClientId(clientId: string): Promise<OAuth2Provider | undefined> {
    if (!clientId) throw new TypeError('findProviderByClientId: clientId is empty');
    const path = '/api/v3/providers/oauth2/';
    // Authentik filters on client_id exactly; matching again here and walking the pages keeps a
    // server that ignored the filter (an older or proxied API) from handing back another provider.
    const matches: OAuth2Provider[] = [];
    for (let page = 1; page <= 100; page++) {
      const r = await call('GET', path, providerListSchema, [200], (signal) =>
        api.GET('/api/v3/providers/oauth2/', {
          params: { query: { client_id: clientId, page, page_size: 100 } },
          signal,
        }),
      );
      const list = r.value as z.infer<typeof providerListSchema>;
      matches.push(...list.results.filter((p) => p.client_id === clientId));
      if (!list.pagination.next || list.pagination.next <= page) break;
    }
    if (matches.length > 1) {
      throw new AuthentikError({
        kind: 'schema',
        status: 200,
        method: 'GET',
        path,
        detail: `${matches.length} providers have this client_id (pks ${matches.map((p) => p.pk).join(', ')})`,
      });
    }
    return matches[0];
  }

  async function getApplication(slug: string): Promise<Application> {
    assertSlug(slug);
    const path = `/api/v3/core/applications/${slug}/`;
    const r = await call('GET', path, applicationSchema, [200], (signal) =>
      api.GET('/api/v3/core/applications/{slug}/', { params: { path: { slug } }, signal }),
    );
    return r.value as Application;
  }

  async function setProviderClientSecret(id: number, secret: string): Promise<OAuth2Provider> {
    assertId(id);
    if (!secret) throw new TypeError('setProviderClientSecret: secret is empty');
    const path = `/api/v3/providers/oauth2/${id}/`;
    const r = await call(
      'PATCH',
      path,
      oauth2ProviderSchema,
      [200],
      (signal) =>
        api.PATCH('/api/v3/providers/oauth2/{id}/', {
          params: { path: { id } },
          body: { client_secret: secret },
          signal,
        }),
      [secret],
    );
    return r.value as OAuth2Provider;
  }

  async function checkClientSecret(clientId: string, secret: string): Promise<boolean> {
    if (!clientId || !secret) throw new TypeError('checkClientSecret: clientId and secret must be non-empty');
    if (clientId.includes(':')) throw new TypeError('checkClientSecret: a client_id with ":" cannot be sent with HTTP Basic');
    const path = '/application/o/revoke/';
    // Authentik does not percent-decode Basic credentials (RFC 6749 2.3.1 says clients encode
    // them), so they are sent raw; Authentik's generated ids and secrets are alphanumeric.
    const basic = Buffer.from(`${clientId}:${secret}`, 'utf8').toString('base64');
    const r = await call(
      'POST',
      path,
      revokeOkSchema,
      [200, 401],
      (signal) =>
        api.POST('/application/o/revoke/', {
          body: { token: randomBytes(32).toString('base64url'), token_type_hint: 'access_token' },
          headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
          signal,
        }),
      [secret, basic],
    );
    if (r.status === 200) return true;
    const err = oauth2ErrorSchema.safeParse(r.body);
    if (err.success && err.data.error === 'invalid_client') return false;
    throw new AuthentikError({
      kind: 'http',
      status: r.status,
      method: 'POST',
      path,
      detail: scrub(err.success ? err.data.error : 'a 401 without an OAuth2 error body', [secret, basic]),
    });
  }

  async function getOpenIdConfiguration(slug: string): Promise<OpenIdConfiguration> {
    assertSlug(slug);
    const path = `/application/o/${slug}/.well-known/openid-configuration`;
    const r = await call('GET', path, openIdConfigurationSchema, [200], (signal) =>
      api.GET('/application/o/{slug}/.well-known/openid-configuration', {
        params: { path: { slug } },
        // A public document: no reason to send the API token along.
        headers: { Authorization: null },
        signal,
      }),
    );
    return r.value as OpenIdConfiguration;
  }

  return {
    getProvider,
    findProviderByClientId,
    getApplication,
    setProviderClientSecret,
    checkClientSecret,
    getOpenIdConfiguration,
  };
}

function normaliseBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError('createAuthentikClient: baseUrl is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError('createAuthentikClient: baseUrl must be http(s)');
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new TypeError('createAuthentikClient: baseUrl must not carry credentials, a query or a fragment');
  }
  return url.href.replace(/\/+$/, '');
}

function assertId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 1) throw new TypeError(`provider id must be a positive integer`);
}

function assertSlug(slug: string): void {
  // The pattern upstream gives Application.slug; it also keeps the slug from reshaping the path.
  if (!/^[-a-zA-Z0-9_]+$/.test(slug)) throw new TypeError('application slug must match ^[-a-zA-Z0-9_]+$');
}

/** A short, value-free description of an Authentik error body (GenericError, ValidationError or OAuth2 error). */
function errorDetail(body: unknown): string | undefined {
  if (typeof body === 'string') return undefined; // HTML error pages from proxies: the status says enough
  if (!body || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  if (typeof b.detail === 'string') return b.detail;
  if (typeof b.error === 'string') return b.error;
  // DRF validation errors: { field: ["message", ...], non_field_errors: [...] }
  const parts: string[] = [];
  for (const [field, messages] of Object.entries(b)) {
    if (Array.isArray(messages)) {
      parts.push(`${field}: ${messages.filter((m) => typeof m === 'string').join(' ')}`);
    }
  }
  return parts.length ? parts.join('; ') : undefined;
}

function transportDetail(err: unknown, kind: 'timeout' | 'transport'): string | undefined {
  if (kind === 'timeout') return 'no answer in time';
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  return typeof cause?.code === 'string' ? cause.code : err instanceof Error ? err.message : undefined;
}
