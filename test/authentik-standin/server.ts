/**
 * A small, stateful stand-in for the parts of Authentik vaultkeeper and Vault talk to.
 *
 * API (/api/v3, Bearer token): OAuth2 provider list/get/patch, application by slug. Every API
 * response has the shape of Authentik's own OpenAPI schema (packages/authentik/test/
 * standin-responses.test.ts validates them against upstream schema.yml).
 * OAuth2/OIDC (/application/o): per-application discovery and JWKS, authorize (no browser: it
 * answers at once with a redirect carrying a code for the configured test user), token,
 * userinfo and RFC 7009 revocation, enough for a whole Vault OIDC login.
 * Test-only admin (/_standin, Bearer token): inspect state, rotate a secret "in the UI",
 * create providers, inject failures, read the request log.
 *
 * Where Authentik's behaviour is copied it says so; where the stand-in simplifies (no flows, no
 * consent, no refresh tokens, one user) it says so too.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { atHash, generateRsaKeyPair, publicJwk, signJwt, type StandinKeyPair } from './jwt.ts';

export interface RedirectUri {
  matching_mode: 'strict' | 'regex';
  url: string;
}

export interface StandinUser {
  pk: number;
  username: string;
  name: string;
  email: string;
  groups: string[];
}

/** A provider as stored: the writable fields of Authentik's OAuth2Provider that the stand-in models. */
export interface StandinProvider {
  pk: number;
  name: string;
  client_type: 'confidential' | 'public';
  client_id: string;
  client_secret: string;
  signing_key: string | null;
  redirect_uris: RedirectUri[];
  authorization_flow: string;
  invalidation_flow: string;
  include_claims_in_id_token: boolean;
  issuer_mode: 'global' | 'per_provider';
  sub_mode: 'hashed_user_id' | 'user_id' | 'user_uuid' | 'user_username' | 'user_email' | 'user_upn';
  access_code_validity: string;
  access_token_validity: string;
  refresh_token_validity: string;
}

export interface StandinApplication {
  pk: string;
  name: string;
  slug: string;
  provider: number | null;
}

export interface StandinState {
  version: 1;
  keyPairs: StandinKeyPair[];
  providers: StandinProvider[];
  applications: StandinApplication[];
  user: StandinUser;
  nextProviderPk: number;
  /** Each provider's earlier secrets, newest last; never accepted, kept so tests can assert that. */
  previousSecrets: Record<string, string[]>;
}

export interface FailureRule {
  /** HTTP method to match, or '*'. */
  method: string;
  /** Exact path (no query), or a prefix ending in '*'. */
  path: string;
  /** Status to answer with; 0 drops the connection without an answer. */
  status: number;
  /** How many matching requests fail; default 1. */
  times?: number;
  /** Body to send (JSON); default `{"detail":"..."}`. */
  body?: unknown;
  /** Wait this long before answering (or dropping). */
  delayMs?: number;
}

export interface RecordedRequest {
  at: string;
  method: string;
  path: string;
  status: number;
  /** Top-level keys of a JSON or form body (never values: they can be secrets). */
  bodyKeys?: string[];
  /** How the client authenticated at the OAuth2 token/revoke endpoints, when it did. */
  clientAuth?: 'basic' | 'post' | 'none';
  injected?: boolean;
}

export interface CreateProviderInput {
  name: string;
  slug: string;
  client_type?: 'confidential' | 'public';
  /** false: no signing key, so ID tokens are HS256 with the client secret (Authentik's behaviour). */
  signing_key?: boolean;
  redirect_uris?: RedirectUri[];
  client_id?: string;
  client_secret?: string;
}

export interface StandinOptions {
  /** The one API token accepted on /api/v3 and /_standin. */
  apiToken: string;
  /** e.g. `http://127.0.0.1:19000`; without it, URLs are built from the request's Host, as Authentik does. */
  issuerBase?: string;
  /** JSON file the state is loaded from (when present) and saved to after every change. */
  stateFile?: string;
  /** The first application's slug (default `vault`). */
  appSlug?: string;
  user?: Partial<StandinUser>;
  /** One line per request, free of secrets (method, path, status, ms). */
  log?: (line: string) => void;
}

export interface StandinControl {
  readonly state: StandinState;
  provider(pk: number): StandinProvider | undefined;
  application(slug: string): StandinApplication | undefined;
  /** As if an admin regenerated the secret in Authentik's UI; returns the new secret. */
  rotateSecret(pk: number, secret?: string): string;
  createProvider(input: CreateProviderInput): { provider: StandinProvider; application: StandinApplication };
  setUser(user: Partial<StandinUser>): StandinUser;
  fail(rule: FailureRule): void;
  clearFailures(): void;
  readonly requests: RecordedRequest[];
  clearRequests(): void;
}

export type StandinServer = Server & { standin: StandinControl };

// Fixed flow UUIDs, like the default-provider-authorization-* flows of a fresh Authentik.
const AUTHORIZATION_FLOW = '0b6d0c4b-3c0e-4a4f-8a7c-7f0c5c1f0a01';
const INVALIDATION_FLOW = '0b6d0c4b-3c0e-4a4f-8a7c-7f0c5c1f0a02';
const ACR = 'goauthentik.io/providers/oauth2/default';
const MAX_BODY = 1024 * 1024;

/** Authentik's generate_id / generate_key: ascii letters and digits. */
export function randomAlnum(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const out: string[] = [];
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      // 248 = 4 * 62: reject the top bytes so every character is equally likely.
      if (b < 248 && out.length < length) out.push(alphabet[b % 62]!);
    }
  }
  return out.join('');
}

function initialState(opts: StandinOptions): StandinState {
  const key = generateRsaKeyPair(randomUUID(), 'authentik Self-signed Certificate');
  const user: StandinUser = {
    pk: 7,
    username: 'vk-test-user',
    name: 'Vaultkeeper Test User',
    email: 'vk-test-user@example.test',
    groups: ['vaultkeeper-operators'],
    ...opts.user,
  };
  return {
    version: 1,
    keyPairs: [key],
    providers: [
      {
        pk: 1,
        name: 'Vault',
        client_type: 'confidential',
        client_id: randomAlnum(40),
        client_secret: randomAlnum(128),
        signing_key: key.pk,
        redirect_uris: [
          { matching_mode: 'strict', url: 'http://127.0.0.1:8250/oidc/callback' },
          { matching_mode: 'strict', url: 'http://localhost:8250/oidc/callback' },
        ],
        authorization_flow: AUTHORIZATION_FLOW,
        invalidation_flow: INVALIDATION_FLOW,
        include_claims_in_id_token: true,
        issuer_mode: 'per_provider',
        sub_mode: 'hashed_user_id',
        access_code_validity: 'minutes=1',
        access_token_validity: 'hours=1',
        refresh_token_validity: 'days=30',
      },
    ],
    applications: [{ pk: randomUUID(), name: 'Vault', slug: opts.appSlug ?? 'vault', provider: 1 }],
    user,
    nextProviderPk: 2,
    previousSecrets: {},
  };
}

/** Authentik's duration strings (`hours=1;minutes=2;seconds=3`) in seconds. */
function durationSeconds(spec: string): number {
  const units: Record<string, number> = { weeks: 604800, days: 86400, hours: 3600, minutes: 60, seconds: 1, microseconds: 1e-6, milliseconds: 1e-3 };
  let total = 0;
  for (const part of spec.split(';')) {
    const [unit, value] = part.split('=');
    if (unit && value && units[unit.trim()] !== undefined) total += Number(value) * units[unit.trim()]!;
  }
  return Math.floor(total);
}

interface AuthorizationCode {
  providerPk: number;
  redirectUri: string;
  scope: string[];
  nonce?: string;
  codeChallenge?: string;
  codeChallengeMethod?: string;
  expiresAt: number;
  authTime: number;
}

interface AccessTokenRecord {
  providerPk: number;
  scope: string[];
  expiresAt: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

export function createStandin(opts: StandinOptions): StandinServer {
  if (!opts.apiToken) throw new TypeError('createStandin: apiToken is required');
  const state = loadState(opts);
  const codes = new Map<string, AuthorizationCode>();
  const accessTokens = new Map<string, AccessTokenRecord>();
  let failures: (FailureRule & { remaining: number })[] = [];
  const requests: RecordedRequest[] = [];

  const save = (): void => {
    if (!opts.stateFile) return;
    mkdirSync(dirname(opts.stateFile), { recursive: true, mode: 0o700 });
    const tmp = `${opts.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(state, null, 2), { mode: 0o600 });
    renameSync(tmp, opts.stateFile);
  };
  save();

  const providerByPk = (pk: number) => state.providers.find((p) => p.pk === pk);
  const appBySlug = (slug: string) => state.applications.find((a) => a.slug === slug);
  const appOfProvider = (pk: number) => state.applications.find((a) => a.provider === pk);
  const keyPair = (pk: string | null) => (pk ? state.keyPairs.find((k) => k.pk === pk) : undefined);

  const setSecret = (p: StandinProvider, secret: string): void => {
    if (secret === p.client_secret) return;
    (state.previousSecrets[String(p.pk)] ??= []).push(p.client_secret);
    p.client_secret = secret;
  };

  const control: StandinControl = {
    state,
    provider: providerByPk,
    application: appBySlug,
    rotateSecret(pk, secret) {
      const p = providerByPk(pk);
      if (!p) throw new Error(`no provider ${pk}`);
      setSecret(p, secret ?? randomAlnum(128));
      save();
      return p.client_secret;
    },
    createProvider(input) {
      if (appBySlug(input.slug)) throw new Error(`application ${input.slug} exists`);
      const pk = state.nextProviderPk++;
      const provider: StandinProvider = {
        ...state.providers[0]!,
        pk,
        name: input.name,
        client_type: input.client_type ?? 'confidential',
        client_id: input.client_id ?? randomAlnum(40),
        client_secret: input.client_secret ?? randomAlnum(128),
        signing_key: input.signing_key === false ? null : state.keyPairs[0]!.pk,
        redirect_uris: input.redirect_uris ?? [{ matching_mode: 'strict', url: 'http://127.0.0.1:8250/oidc/callback' }],
      };
      const application: StandinApplication = { pk: randomUUID(), name: input.name, slug: input.slug, provider: pk };
      state.providers.push(provider);
      state.applications.push(application);
      save();
      return { provider, application };
    },
    setUser(user) {
      Object.assign(state.user, user);
      save();
      return state.user;
    },
    fail(rule) {
      failures.push({ ...rule, remaining: rule.times ?? 1 });
    },
    clearFailures() {
      failures = [];
    },
    requests,
    clearRequests() {
      requests.length = 0;
    },
  };

  const baseUrl = (req: IncomingMessage): string => (opts.issuerBase ?? `http://${req.headers.host ?? '127.0.0.1'}`).replace(/\/+$/, '');
  const issuerOf = (req: IncomingMessage, p: StandinProvider): string => {
    const app = appOfProvider(p.pk);
    // Authentik: per_provider -> <base>/application/o/<slug>/ (trailing slash); global -> <base>/
    return p.issuer_mode === 'global' || !app ? `${baseUrl(req)}/` : `${baseUrl(req)}/application/o/${app.slug}/`;
  };
  const subjectOf = (p: StandinProvider): string => {
    const u = state.user;
    switch (p.sub_mode) {
      case 'user_id':
        return String(u.pk);
      case 'user_username':
        return u.username;
      case 'user_email':
      case 'user_upn':
        return u.email;
      case 'user_uuid':
        return createHash('md5').update(u.username).digest('hex');
      default:
        return createHash('sha256').update(`${u.pk}-${state.applications[0]?.pk ?? ''}`).digest('hex');
    }
  };

  // ---------- rendering (shapes from upstream schema.yml) ----------

  const renderProvider = (p: StandinProvider): Record<string, unknown> => {
    const app = appOfProvider(p.pk);
    return {
      pk: p.pk,
      name: p.name,
      authentication_flow: null,
      authorization_flow: p.authorization_flow,
      invalidation_flow: p.invalidation_flow,
      property_mappings: [],
      component: 'ak-provider-oauth2-form',
      assigned_application_slug: app?.slug ?? null,
      assigned_application_name: app?.name ?? null,
      assigned_backchannel_application_slug: null,
      assigned_backchannel_application_name: null,
      verbose_name: 'OAuth2/OpenID Provider',
      verbose_name_plural: 'OAuth2/OpenID Providers',
      meta_model_name: 'authentik_providers_oauth2.oauth2provider',
      client_type: p.client_type,
      client_id: p.client_id,
      client_secret: p.client_secret,
      access_code_validity: p.access_code_validity,
      access_token_validity: p.access_token_validity,
      refresh_token_validity: p.refresh_token_validity,
      refresh_token_threshold: 'seconds=0',
      include_claims_in_id_token: p.include_claims_in_id_token,
      signing_key: p.signing_key,
      encryption_key: null,
      redirect_uris: p.redirect_uris.map((r) => ({ ...r })),
      logout_method: 'backchannel',
      sub_mode: p.sub_mode,
      issuer_mode: p.issuer_mode,
      jwt_federation_sources: [],
      jwt_federation_providers: [],
    };
  };

  const renderApplication = (a: StandinApplication): Record<string, unknown> => {
    const p = a.provider === null ? undefined : providerByPk(a.provider);
    return {
      pk: a.pk,
      name: a.name,
      slug: a.slug,
      provider: a.provider,
      provider_obj: p
        ? {
            pk: p.pk,
            name: p.name,
            authentication_flow: null,
            authorization_flow: p.authorization_flow,
            invalidation_flow: p.invalidation_flow,
            property_mappings: [],
            component: 'ak-provider-oauth2-form',
            assigned_application_slug: a.slug,
            assigned_application_name: a.name,
            assigned_backchannel_application_slug: null,
            assigned_backchannel_application_name: null,
            verbose_name: 'OAuth2/OpenID Provider',
            verbose_name_plural: 'OAuth2/OpenID Providers',
            meta_model_name: 'authentik_providers_oauth2.oauth2provider',
          }
        : null,
      backchannel_providers: [],
      backchannel_providers_obj: [],
      launch_url: null,
      open_in_new_tab: false,
      // meta_launch_url and OAuth2Provider.logout_uri are left out: Authentik renders them as ""
      // when unset, which its own schema (format: uri) does not allow, and neither is required.
      meta_icon: '',
      meta_icon_url: null,
      meta_icon_themed_urls: null,
      meta_description: '',
      meta_publisher: '',
      policy_engine_mode: 'any',
      group: '',
    };
  };

  // ---------- /api/v3 ----------

  /** Authentik's TokenAuthentication; DRF answers 403 (not 401) because it sends no WWW-Authenticate. */
  const requireApiToken = (req: IncomingMessage): void => {
    const header = (req.headers.authorization ?? '').trim();
    if (header === '' || !header.includes(' ')) {
      throw new HttpError(403, { detail: 'Authentication credentials were not provided.' });
    }
    const [type, ...rest] = header.split(' ');
    const credentials = rest.join(' ');
    if (type!.toLowerCase() !== 'bearer') throw new HttpError(403, { detail: 'Unsupported authentication type' });
    if (credentials === '') throw new HttpError(403, { detail: 'Malformed header' });
    if (!safeEqual(credentials, opts.apiToken)) throw new HttpError(403, { detail: 'Token invalid/expired' });
  };

  const api = async (req: IncomingMessage, url: URL, rec: RecordedRequest): Promise<[number, unknown]> => {
    requireApiToken(req);
    const method = req.method ?? 'GET';
    const path = url.pathname;

    if (path === '/api/v3/providers/oauth2/') {
      if (method !== 'GET') throw methodNotAllowed(method);
      let list = [...state.providers].sort((a, b) => a.name.localeCompare(b.name) || a.pk - b.pk);
      const clientId = url.searchParams.get('client_id');
      if (clientId !== null) list = list.filter((p) => p.client_id === clientId);
      const name = url.searchParams.get('name');
      if (name !== null) list = list.filter((p) => p.name === name);
      return [200, paginate(list.map(renderProvider), url)];
    }

    const providerMatch = /^\/api\/v3\/providers\/oauth2\/([^/.]+)\/$/.exec(path);
    if (providerMatch) {
      const p = /^\d+$/.test(providerMatch[1]!) ? providerByPk(Number(providerMatch[1])) : undefined;
      if (method === 'GET') {
        if (!p) throw new HttpError(404, { detail: 'No OAuth2Provider matches the given query.' });
        return [200, renderProvider(p)];
      }
      if (method === 'PATCH') {
        if (!p) throw new HttpError(404, { detail: 'No OAuth2Provider matches the given query.' });
        const body = await readJson(req);
        rec.bodyKeys = Object.keys(body);
        applyPatch(p, body);
        save();
        return [200, renderProvider(p)];
      }
      throw methodNotAllowed(method);
    }

    const appMatch = /^\/api\/v3\/core\/applications\/([^/]+)\/$/.exec(path);
    if (appMatch) {
      if (method !== 'GET') throw methodNotAllowed(method);
      const a = appBySlug(decodeURIComponent(appMatch[1]!));
      if (!a) throw new HttpError(404, { detail: 'No Application matches the given query.' });
      return [200, renderApplication(a)];
    }

    throw new HttpError(404, { detail: 'Not found.' });
  };

  /** DRF PageNumberPagination + Authentik's `pagination` object (next/previous are 0 when absent). */
  const paginate = (items: unknown[], url: URL): Record<string, unknown> => {
    const pageSize = positiveInt(url.searchParams.get('page_size')) ?? 100;
    const pageParam = url.searchParams.get('page');
    const page = pageParam === null ? 1 : positiveInt(pageParam);
    const totalPages = Math.max(1, Math.ceil(items.length / pageSize));
    if (page === undefined || page > totalPages) throw new HttpError(404, { detail: 'Invalid page.' });
    const start = (page - 1) * pageSize;
    const results = items.slice(start, start + pageSize);
    return {
      pagination: {
        next: page < totalPages ? page + 1 : 0,
        previous: page > 1 ? page - 1 : 0,
        count: items.length,
        current: page,
        total_pages: totalPages,
        start_index: items.length === 0 ? 0 : start + 1,
        end_index: page === totalPages ? items.length : start + pageSize,
      },
      results,
      autocomplete: {},
    };
  };

  /** The writable fields the stand-in models, validated the way DRF's serializer would; unknown and read-only fields are ignored. */
  const applyPatch = (p: StandinProvider, body: Record<string, unknown>): void => {
    const errors: Record<string, string[]> = {};
    const next = { ...p, redirect_uris: p.redirect_uris.map((r) => ({ ...r })) };
    const str = (field: string, max: number, allowBlank: boolean): string | undefined => {
      const v = body[field];
      if (v === undefined) return undefined;
      if (typeof v !== 'string') {
        errors[field] = ['Not a valid string.'];
        return undefined;
      }
      if (!allowBlank && v === '') errors[field] = ['This field may not be blank.'];
      else if (v.length > max) errors[field] = [`Ensure this field has no more than ${max} characters.`];
      return v;
    };
    const name = str('name', 1_000_000, false);
    if (name !== undefined) next.name = name;
    const clientId = str('client_id', 255, false);
    if (clientId !== undefined) next.client_id = clientId;
    const secret = str('client_secret', 255, true);
    if (secret !== undefined) next.client_secret = secret;
    if (body.client_type !== undefined) {
      if (body.client_type === 'confidential' || body.client_type === 'public') next.client_type = body.client_type;
      else errors.client_type = [`"${String(body.client_type)}" is not a valid choice.`];
    }
    if (body.signing_key !== undefined) {
      if (body.signing_key === null) next.signing_key = null;
      else if (typeof body.signing_key === 'string' && keyPair(body.signing_key)) next.signing_key = body.signing_key;
      else errors.signing_key = ['Invalid pk - object does not exist.'];
    }
    if (body.include_claims_in_id_token !== undefined) {
      if (typeof body.include_claims_in_id_token === 'boolean') next.include_claims_in_id_token = body.include_claims_in_id_token;
      else errors.include_claims_in_id_token = ['Must be a valid boolean.'];
    }
    if (body.redirect_uris !== undefined) {
      const list = body.redirect_uris;
      const valid =
        Array.isArray(list) &&
        list.every(
          (r: unknown) =>
            !!r &&
            typeof r === 'object' &&
            ((r as RedirectUri).matching_mode === 'strict' || (r as RedirectUri).matching_mode === 'regex') &&
            typeof (r as RedirectUri).url === 'string' &&
            (r as RedirectUri).url !== '',
        );
      if (valid) next.redirect_uris = (list as RedirectUri[]).map((r) => ({ matching_mode: r.matching_mode, url: r.url }));
      else errors.redirect_uris = ['Invalid redirect URI list.'];
    }
    if (Object.keys(errors).length > 0) throw new HttpError(400, errors);
    if (next.client_secret !== p.client_secret) setSecret(p, next.client_secret);
    Object.assign(p, next);
  };

  // ---------- /application/o (OAuth2 / OIDC) ----------

  const discovery = (req: IncomingMessage, p: StandinProvider, slug: string): Record<string, unknown> => {
    const base = baseUrl(req);
    return {
      issuer: issuerOf(req, p),
      authorization_endpoint: `${base}/application/o/authorize/`,
      token_endpoint: `${base}/application/o/token/`,
      userinfo_endpoint: `${base}/application/o/userinfo/`,
      end_session_endpoint: `${base}/application/o/${slug}/end-session/`,
      introspection_endpoint: `${base}/application/o/introspect/`,
      revocation_endpoint: `${base}/application/o/revoke/`,
      device_authorization_endpoint: `${base}/application/o/device/`,
      response_types_supported: ['code', 'id_token', 'id_token token', 'code token', 'code id_token', 'code id_token token'],
      response_modes_supported: ['query', 'fragment', 'form_post'],
      jwks_uri: `${base}/application/o/${slug}/jwks/`,
      grant_types_supported: ['authorization_code', 'refresh_token', 'implicit', 'client_credentials', 'password', 'urn:ietf:params:oauth:grant-type:device_code'],
      // Authentik: without a signing key the ID token is HS256, keyed with the client secret.
      id_token_signing_alg_values_supported: [p.signing_key ? 'RS256' : 'HS256'],
      subject_types_supported: ['public'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic'],
      acr_values_supported: [ACR],
      scopes_supported: ['openid', 'email', 'profile'],
      request_parameter_supported: false,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'acr'],
      claims_parameter_supported: false,
      code_challenge_methods_supported: ['plain', 'S256'],
    };
  };

  const oauthProviderForSlug = (slug: string): StandinProvider => {
    const app = appBySlug(slug);
    const p = app?.provider == null ? undefined : providerByPk(app.provider);
    // Django's get_object_or_404 renders an HTML page; the body does not matter to clients.
    if (!p) throw new HttpError(404, 'Not Found');
    return p;
  };

  const redirectAllowed = (p: StandinProvider, uri: string): boolean =>
    p.redirect_uris.some((r) => {
      if (r.matching_mode === 'strict') return r.url === uri;
      try {
        return new RegExp(`^(?:${r.url})$`).test(uri);
      } catch {
        return false;
      }
    });

  /** The authorization endpoint without a browser: the configured user is "logged in" and consents at once. */
  const authorize = async (req: IncomingMessage, url: URL): Promise<[number, unknown, Record<string, string>]> => {
    const params = req.method === 'POST' ? await readForm(req) : url.searchParams;
    const clientId = params.get('client_id') ?? '';
    const p = state.providers.find((x) => x.client_id === clientId);
    // Authentik shows an error page (no redirect) for an unknown client or a redirect_uri it does not allow.
    if (!p) throw new HttpError(400, { error: 'Client ID Error', error_description: 'The client identifier (client_id) is missing or invalid.' });
    const redirectUri = params.get('redirect_uri') ?? '';
    if (!redirectUri || !redirectAllowed(p, redirectUri)) {
      throw new HttpError(400, { error: 'Redirect URI Error', error_description: 'The request fails due to a missing, invalid, or mismatching redirection URI (redirect_uri).' });
    }
    const state_ = params.get('state') ?? '';
    const back = (q: Record<string, string>): [number, unknown, Record<string, string>] => {
      const target = new URL(redirectUri);
      for (const [k, v] of Object.entries(q)) target.searchParams.set(k, v);
      if (state_) target.searchParams.set('state', state_);
      return [302, '', { Location: target.toString() }];
    };
    if (params.get('response_type') !== 'code') {
      return back({ error: 'unsupported_response_type', error_description: 'only the authorization code flow is modelled' });
    }
    const challengeMethod = params.get('code_challenge_method') ?? (params.get('code_challenge') ? 'plain' : undefined);
    if (challengeMethod && challengeMethod !== 'S256' && challengeMethod !== 'plain') {
      return back({ error: 'invalid_request', error_description: 'unsupported code_challenge_method' });
    }
    const code = randomAlnum(64);
    const now = Math.floor(Date.now() / 1000);
    codes.set(code, {
      providerPk: p.pk,
      redirectUri,
      scope: (params.get('scope') ?? '').split(/\s+/).filter(Boolean),
      ...(params.get('nonce') ? { nonce: params.get('nonce')! } : {}),
      ...(params.get('code_challenge') ? { codeChallenge: params.get('code_challenge')!, codeChallengeMethod: challengeMethod! } : {}),
      expiresAt: now + Math.max(1, durationSeconds(p.access_code_validity)),
      authTime: now,
    });
    return back({ code });
  };

  /** Authentik's extract_client_auth: Basic (base64, split at the first colon, no percent-decoding) or form fields. */
  const clientAuth = (req: IncomingMessage, form: URLSearchParams): { clientId: string; clientSecret: string; how: 'basic' | 'post' | 'none' } => {
    const header = req.headers.authorization ?? '';
    const basic = /^Basic\s(.+)$/.exec(header);
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i < 0) return { clientId: '', clientSecret: '', how: 'basic' };
      return { clientId: decoded.slice(0, i), clientSecret: decoded.slice(i + 1), how: 'basic' };
    }
    const clientId = form.get('client_id') ?? '';
    const clientSecret = form.get('client_secret') ?? '';
    return { clientId, clientSecret, how: clientId || clientSecret ? 'post' : 'none' };
  };

  const tokenError = (error: string, description: string): HttpError =>
    // Authentik's TokenView answers every TokenError, invalid_client included, with 400.
    new HttpError(400, { error, error_description: description }, { 'Cache-Control': 'no-store', Pragma: 'no-cache' });

  const token = async (req: IncomingMessage, rec: RecordedRequest): Promise<[number, unknown, Record<string, string>]> => {
    if (req.method !== 'POST') throw new HttpError(405, '');
    const form = await readForm(req);
    rec.bodyKeys = [...new Set(form.keys())];
    const auth = clientAuth(req, form);
    rec.clientAuth = auth.how;
    const p = state.providers.find((x) => x.client_id === auth.clientId);
    if (!p) throw tokenError('invalid_client', 'Client authentication failed (unknown client)');
    const grantType = form.get('grant_type') ?? '';
    if (grantType !== 'authorization_code') throw tokenError('unsupported_grant_type', 'The authorization grant type is not supported by the authorization server');
    if (p.client_type === 'confidential' && !safeEqual(auth.clientSecret, p.client_secret)) {
      throw tokenError('invalid_client', 'Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)');
    }
    const redirectUri = form.get('redirect_uri') ?? '';
    if (!redirectAllowed(p, redirectUri)) throw tokenError('invalid_client', 'redirect_uri is not allowed for this client');
    const rawCode = form.get('code') ?? '';
    const code = codes.get(rawCode);
    const now = Math.floor(Date.now() / 1000);
    if (!code || code.providerPk !== p.pk || code.expiresAt <= now || code.redirectUri !== redirectUri) {
      throw tokenError('invalid_grant', 'The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client');
    }
    if (code.codeChallenge) {
      const verifier = form.get('code_verifier') ?? '';
      const computed = code.codeChallengeMethod === 'S256' ? createHash('sha256').update(verifier, 'ascii').digest('base64url') : verifier;
      if (!verifier || computed !== code.codeChallenge) throw tokenError('invalid_grant', 'Code challenge not matching');
    }
    codes.delete(rawCode);

    const expiresIn = Math.max(1, durationSeconds(p.access_token_validity));
    const accessToken = randomAlnum(64);
    accessTokens.set(accessToken, { providerPk: p.pk, scope: code.scope, expiresAt: now + expiresIn });
    const body: Record<string, unknown> = { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn, scope: code.scope.join(' ') };
    if (code.scope.includes('openid')) {
      const claims: Record<string, unknown> = {
        iss: issuerOf(req, p),
        sub: subjectOf(p),
        aud: p.client_id,
        exp: now + expiresIn,
        iat: now,
        auth_time: code.authTime,
        acr: ACR,
        amr: ['pwd'],
        sid: createHash('sha256').update(accessToken).digest('hex'),
        at_hash: atHash(accessToken),
        ...(code.nonce ? { nonce: code.nonce } : {}),
        ...(p.include_claims_in_id_token ? userClaims(code.scope) : {}),
      };
      const key = keyPair(p.signing_key);
      body.id_token = signJwt(claims, key ? { key } : { hmacSecret: p.client_secret });
    }
    return [200, body, { 'Cache-Control': 'no-store', Pragma: 'no-cache' }];
  };

  /** The claims of Authentik's default scope mappings (email, profile), for the configured user. */
  const userClaims = (scope: string[]): Record<string, unknown> => {
    const u = state.user;
    const out: Record<string, unknown> = {};
    if (scope.includes('email')) Object.assign(out, { email: u.email, email_verified: true });
    if (scope.includes('profile')) {
      Object.assign(out, { name: u.name, given_name: u.name, preferred_username: u.username, nickname: u.username, groups: [...u.groups] });
    }
    return out;
  };

  const userinfo = async (req: IncomingMessage, url: URL): Promise<[number, unknown, Record<string, string>]> => {
    const header = req.headers.authorization ?? '';
    const m = /^[Bb]earer\s(.+)$/.exec(header);
    const raw = m ? m[1]! : req.method === 'POST' ? ((await readForm(req)).get('access_token') ?? '') : (url.searchParams.get('access_token') ?? '');
    const t = accessTokens.get(raw);
    if (!t || t.expiresAt <= Math.floor(Date.now() / 1000)) {
      throw new HttpError(401, '', { 'WWW-Authenticate': 'error="invalid_token", error_description="The access token provided is expired, revoked, malformed, or invalid for other reasons"' });
    }
    const p = providerByPk(t.providerPk)!;
    return [200, { sub: subjectOf(p), ...userClaims(t.scope) }, {}];
  };

  const revoke = async (req: IncomingMessage, rec: RecordedRequest): Promise<[number, unknown, Record<string, string>]> => {
    if (req.method !== 'POST') throw new HttpError(405, '');
    const form = await readForm(req);
    rec.bodyKeys = [...new Set(form.keys())];
    const auth = clientAuth(req, form);
    rec.clientAuth = auth.how;
    const p = auth.clientId === '' && auth.clientSecret === '' ? undefined : state.providers.find((x) => x.client_id === auth.clientId);
    const headers = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };
    if (!p || !safeEqual(auth.clientSecret, p.client_secret)) {
      return [401, { error: 'invalid_client', error_description: 'Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)' }, headers];
    }
    // RFC 7009 2.2: an unknown token is not an error.
    const t = form.get('token') ?? '';
    if (accessTokens.get(t)?.providerPk === p.pk) accessTokens.delete(t);
    return [200, {}, headers];
  };

  const oauth = async (req: IncomingMessage, url: URL, rec: RecordedRequest): Promise<[number, unknown, Record<string, string>]> => {
    const path = url.pathname;
    if (path === '/application/o/authorize/') return authorize(req, url);
    if (path === '/application/o/token/') return token(req, rec);
    if (path === '/application/o/userinfo/') return userinfo(req, url);
    if (path === '/application/o/revoke/') return revoke(req, rec);
    const wk = /^\/application\/o\/([^/]+)\/\.well-known\/openid-configuration$/.exec(path);
    if (wk && req.method === 'GET') {
      const slug = decodeURIComponent(wk[1]!);
      return [200, discovery(req, oauthProviderForSlug(slug), slug), { 'Access-Control-Allow-Origin': '*' }];
    }
    const jwks = /^\/application\/o\/([^/]+)\/jwks\/$/.exec(path);
    if (jwks && req.method === 'GET') {
      const key = keyPair(oauthProviderForSlug(decodeURIComponent(jwks[1]!)).signing_key);
      // Authentik renders `{}` (no "keys" at all) for a provider without signing key.
      return [200, key ? { keys: [publicJwk(key)] } : {}, { 'Access-Control-Allow-Origin': '*' }];
    }
    throw new HttpError(404, 'Not Found');
  };

  // ---------- /_standin (test-only admin) ----------

  const admin = async (req: IncomingMessage, url: URL): Promise<[number, unknown]> => {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (path === '/_standin/health' && method === 'GET') return [200, { ok: true }];
    requireApiToken(req);
    if (path === '/_standin/state' && method === 'GET') {
      return [200, { ...state, keyPairs: state.keyPairs.map(({ privateKeyPem: _omit, ...k }) => k), failures, user: state.user }];
    }
    if (path === '/_standin/fail' && method === 'POST') {
      const body = await readJson(req);
      if (typeof body.path !== 'string' || typeof body.status !== 'number') throw new HttpError(400, { detail: 'need path (string) and status (number)' });
      control.fail({
        method: typeof body.method === 'string' ? body.method.toUpperCase() : '*',
        path: body.path,
        status: body.status,
        ...(typeof body.times === 'number' ? { times: body.times } : {}),
        ...(body.body !== undefined ? { body: body.body } : {}),
        ...(typeof body.delayMs === 'number' ? { delayMs: body.delayMs } : {}),
      });
      return [201, { failures }];
    }
    if (path === '/_standin/fail' && method === 'DELETE') {
      control.clearFailures();
      return [200, { failures }];
    }
    const rot = /^\/_standin\/providers\/(\d+)\/secret$/.exec(path);
    if (rot && method === 'POST') {
      const body = await readJson(req, true);
      if (!providerByPk(Number(rot[1]))) throw new HttpError(404, { detail: 'no such provider' });
      const secret = control.rotateSecret(Number(rot[1]), typeof body.client_secret === 'string' ? body.client_secret : undefined);
      return [200, { client_secret: secret }];
    }
    if (path === '/_standin/providers' && method === 'POST') {
      const body = (await readJson(req)) as unknown as CreateProviderInput;
      if (typeof body.name !== 'string' || typeof body.slug !== 'string') throw new HttpError(400, { detail: 'need name and slug' });
      if (appBySlug(body.slug)) throw new HttpError(400, { detail: 'slug exists' });
      const created = control.createProvider(body);
      return [201, { provider: renderProvider(created.provider), application: renderApplication(created.application) }];
    }
    if (path === '/_standin/user' && method === 'PUT') {
      return [200, control.setUser((await readJson(req)) as Partial<StandinUser>)];
    }
    if (path === '/_standin/requests' && method === 'GET') return [200, { requests }];
    if (path === '/_standin/requests' && method === 'DELETE') {
      control.clearRequests();
      return [200, { requests }];
    }
    throw new HttpError(404, { detail: 'Not found.' });
  };

  // ---------- dispatch ----------

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://standin.invalid');
    const rec: RecordedRequest = { at: new Date().toISOString(), method: req.method ?? 'GET', path: url.pathname, status: 0 };
    const isAdmin = url.pathname.startsWith('/_standin/');
    let status = 500;
    let body: unknown = { detail: 'internal error in the authentik stand-in' };
    let headers: Record<string, string> = {};
    try {
      const rule = isAdmin ? undefined : takeFailure(req.method ?? 'GET', url.pathname);
      if (rule) {
        rec.injected = true;
        if (rule.delayMs) await new Promise((r) => setTimeout(r, rule.delayMs));
        if (rule.status === 0) {
          rec.status = 0;
          requests.push(rec);
          req.socket.destroy();
          return;
        }
        status = rule.status;
        body = rule.body ?? { detail: `injected failure (authentik stand-in): ${rule.status}` };
      } else if (url.pathname.startsWith('/api/v3/')) {
        [status, body] = await api(req, url, rec);
      } else if (url.pathname.startsWith('/application/o/')) {
        [status, body, headers] = await oauth(req, url, rec);
      } else if (isAdmin) {
        [status, body] = await admin(req, url);
      } else {
        status = 404;
        body = 'Not Found';
      }
    } catch (err) {
      if (err instanceof HttpError) {
        status = err.status;
        body = err.body;
        headers = err.headers;
      } else {
        opts.log?.(`error ${req.method} ${url.pathname}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    rec.status = status;
    if (!isAdmin) requests.push(rec);
    if (requests.length > 5000) requests.splice(0, requests.length - 5000);
    const isText = typeof body === 'string';
    const payload = isText ? (body as string) : JSON.stringify(body);
    res.writeHead(status, {
      ...(status === 302 ? {} : { 'Content-Type': isText ? 'text/html; charset=utf-8' : 'application/json' }),
      'Content-Length': Buffer.byteLength(payload),
      ...headers,
    });
    res.end(payload);
    opts.log?.(`${rec.at} ${req.method} ${url.pathname} ${status} ${Date.now() - started}ms${rec.injected ? ' (injected)' : ''}`);
  };

  const takeFailure = (method: string, path: string): FailureRule | undefined => {
    const i = failures.findIndex(
      (f) =>
        f.remaining > 0 &&
        (f.method === '*' || f.method.toUpperCase() === method) &&
        (f.path.endsWith('*') ? path.startsWith(f.path.slice(0, -1)) : f.path === path),
    );
    if (i < 0) return undefined;
    const rule = failures[i]!;
    rule.remaining -= 1;
    if (rule.remaining <= 0) failures.splice(i, 1);
    return rule;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  }) as StandinServer;
  server.standin = control;
  return server;
}

function loadState(opts: StandinOptions): StandinState {
  if (opts.stateFile) {
    let text: string | undefined;
    try {
      text = readFileSync(opts.stateFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      const parsed = JSON.parse(text) as StandinState;
      if (parsed.version !== 1) throw new Error(`${opts.stateFile}: unknown state version`);
      return parsed;
    }
  }
  return initialState(opts);
}

function methodNotAllowed(method: string): HttpError {
  return new HttpError(405, { detail: `Method "${method}" not allowed.` });
}

function positiveInt(v: string | null): number | undefined {
  if (v === null || !/^\d+$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 ? n : undefined;
}

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, { detail: 'Request body too large.' });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage, allowEmpty = false): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  if (allowEmpty && text.trim() === '') return {};
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (type !== 'application/json') throw new HttpError(415, { detail: `Unsupported media type "${type}" in request.` });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, { detail: 'JSON parse error - invalid JSON' });
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new HttpError(400, { non_field_errors: ['Invalid data. Expected a dictionary, but got list.'] });
  }
  return parsed as Record<string, unknown>;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new URLSearchParams(await readBody(req));
}

/** A stand-in on a free loopback port in this process (unit tests); returns its base URL. */
export async function listenOnFreePort(server: StandinServer): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
}
