import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import nodeVault from 'node-vault';
import { registerSecret, withRetry, z, type Logger } from '@vaultkeeper/runtime';
import { isLoopback, type VaultConfig } from './config.ts';
import { VaultError, VaultResponseShapeError, VaultTlsError, VaultUnreachableError } from './errors.ts';
import { readBody, Transport, type HttpResponse } from './transport.ts';

export interface CallOptions {
  /** A write that may safely be sent twice (the caller knows; e.g. KV with check-and-set). */
  idempotent?: boolean;
  signal?: AbortSignal;
  /** Overrides vault.callDeadlineSeconds for this call. */
  deadlineSeconds?: number;
  /** At most this many attempts (1: no retry, e.g. a per-node health probe). */
  maxAttempts?: number;
  /** Statuses returned as data instead of thrown (sys/health's 429/472/473/501/503). */
  acceptStatus?: number[];
}

export interface RawCallOptions extends CallOptions {
  method?: string;
  body?: unknown;
  /** Do not follow 307 redirects (to observe them). */
  noRedirect?: boolean;
  /** Send to this node and no other: no fallback, no redirect (per-node health checks). */
  node?: string;
}

/** What node-vault hands its injected request function, and what it expects back. */
interface NodeVaultRequest {
  method: string;
  uri: string;
  json?: unknown;
  [requestOption: string]: unknown;
}
interface NodeVaultResponse {
  statusCode: number;
  body: unknown;
  request: { path: string };
}
type NodeVaultClient = ReturnType<typeof nodeVault>;

const API_PREFIX = 'vaultkeeper://node/v1/';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'LIST', 'DELETE']);
const MAX_REDIRECTS = 3;

/** Vault's generic response envelope; `data` is checked by the caller's schema. */
const envelope = z.looseObject({
  data: z.unknown().optional(),
  auth: z
    .looseObject({
      client_token: z.string(),
      accessor: z.string(),
      lease_duration: z.number(),
      renewable: z.boolean(),
      policies: z.array(z.string()).nullable().optional(),
    })
    .nullable()
    .optional(),
  wrap_info: z.unknown().optional(),
  warnings: z.array(z.string()).nullable().optional(),
});
export type VaultEnvelope = z.infer<typeof envelope>;

/**
 * The one Vault client. node-vault supplies the JSON API surface; every request it makes goes
 * through `exchange`, which adds what node-vault lacks: retries that only repeat what is safe to
 * repeat, a per-call deadline, fallback to other nodes, following a standby's redirect to the
 * active node, typed errors that never hold a body or a token, and raw streaming.
 */
export class VaultClient {
  readonly nodes: string[];
  private preferred: string;
  private readonly transport: Transport;
  private readonly nv: NodeVaultClient;
  /** Set when this process logged in, so it knows the token is its own to revoke. */
  private ownToken = false;
  private revoking: Promise<boolean> | undefined;

  constructor(
    private readonly cfg: VaultConfig,
    private readonly log: Logger,
    private readonly signal?: AbortSignal,
    ca?: string,
  ) {
    this.nodes = [cfg.address, ...cfg.fallbackAddresses].map((a) => a.replace(/\/+$/, ''));
    for (const node of this.nodes) this.assertAllowed(node);
    this.preferred = this.nodes[0]!;
    this.transport = new Transport(
      { ca, serverName: cfg.tlsServerName, clusterName: new URL(this.nodes[0]!).hostname.replace(/^\[|\]$/g, '') },
      (node, name) => log.info({ node, verifiedAs: name }, 'node certificate does not cover its own address; verified it as the configured address instead'),
    );
    this.nv = nodeVault({
      endpoint: 'vaultkeeper://node',
      noCustomHTTPVerbs: true,
      // node-vault's debug channel prints request bodies (secrets) when DEBUG is set: silence it.
      debug: () => undefined,
      'request-promise': { defaults: () => (req: NodeVaultRequest) => this.viaNodeVault(req) },
      ...(cfg.namespace ? { namespace: cfg.namespace } : {}),
    });
  }

  get token(): string | undefined {
    return this.nv.token;
  }

  setToken(token: string, own: boolean): void {
    registerSecret(token);
    this.nv.token = token;
    this.ownToken = own;
    this.revoking = undefined;
  }

  /** Logs in with the configured method; see auth.ts for where the credentials come from. */
  async loginKubernetes(role: string, jwt: string, mount: string): Promise<VaultEnvelope['auth']> {
    registerSecret(jwt);
    // Retried like an idempotent call: a login that failed with 5xx (e.g. "local node not active"
    // during a leader election) made no token; in the rare case that one was made and the answer
    // lost, it is a short-TTL token of the job's own role that expires by itself.
    const login = () => this.nv.kubernetesLogin({ role, jwt, mount_point: mount, requestOptions: { signal: this.signal, idempotent: true } });
    let answer: unknown;
    try {
      answer = await login();
    } catch (err) {
      // OpenBao 2.6 standbys answer logins from their own lagging view: for ~25 s after a role or
      // the mount's config was written they said "invalid role name" (400) or "permission denied"
      // (403) while the active node accepted the same login (seen on the stack). Through a Service
      // the login may land on any node: before calling it refused, ask the active one.
      if (!(err instanceof VaultError) || (err.status !== 400 && err.status !== 403)) throw err;
      const refusedBy = this.preferred;
      const active = await this.findActiveNode({ maxAttempts: 1 }).catch(() => refusedBy);
      if (active === refusedBy) throw err;
      this.log.info({ mount, node: active }, 'login refused through the configured address; asking the active node');
      answer = await login();
    }
    const res = envelope.parse(answer);
    if (!res.auth) throw new VaultResponseShapeError('POST', `auth/${mount}/login`, ['auth: missing']);
    this.setToken(res.auth.client_token, true);
    return res.auth;
  }

  async useStaticToken(token?: string): Promise<void> {
    const value = token ?? (await readFile(join(homedir(), '.vault-token'), 'utf8').catch(() => '')).trim();
    if (!value) throw new Error('no Vault token: set VAULT_TOKEN, write ~/.vault-token, or configure Kubernetes auth (VAULT_AUTH_ROLE)');
    this.setToken(value, false);
  }

  /**
   * Revokes the token only if this process created it by logging in; a token given to us is not
   * ours to end. A job may call it as soon as it is done with Vault; a second call while the first
   * is in flight shares it, and after a failure the next call (the exit cleanup) tries again.
   */
  revokeOwnToken(): Promise<boolean> {
    if (!this.ownToken || !this.nv.token) return Promise.resolve(false);
    this.revoking ??= this.nv
      // Not the job's signal: this runs during cleanup after SIGTERM has already aborted it.
      .tokenRevokeSelf({ requestOptions: { signal: AbortSignal.timeout(10_000), deadlineSeconds: 10, idempotent: true } })
      .then(
        () => {
          this.ownToken = false;
          return true;
        },
        (err: unknown) => {
          this.revoking = undefined;
          throw err;
        },
      );
    return this.revoking;
  }

  async read<T = unknown>(path: string, data?: z.ZodType<T>, opts: CallOptions = {}): Promise<T> {
    return this.unwrap('GET', path, await this.nv.read(path, { ...opts }), data);
  }

  /** Full envelope of a read, for endpoints whose payload is not under `data` (sys/*). */
  async readRaw(path: string, opts: CallOptions = {}): Promise<unknown> {
    return this.nv.read(path, { ...opts });
  }

  async list(path: string, opts: CallOptions = {}): Promise<string[]> {
    try {
      const keys = await this.unwrap('LIST', path, await this.nv.list(path, { ...opts }), z.object({ keys: z.array(z.string()) }));
      return keys.keys;
    } catch (err) {
      if (err instanceof VaultError && err.status === 404) return [];
      throw err;
    }
  }

  async write<T = unknown>(path: string, body: unknown, data?: z.ZodType<T>, opts: CallOptions = {}): Promise<T | undefined> {
    const res = await this.nv.write(path, body, { ...opts });
    return res === undefined || res === '' ? undefined : this.unwrap('POST', path, res, data);
  }

  async delete(path: string, opts: CallOptions = {}): Promise<void> {
    await this.nv.delete(path, { ...opts });
  }

  /**
   * A request whose body is returned as a stream (the Raft snapshot), never held whole in memory.
   * Retries and redirects happen before the first byte; once the body flows, failure is the caller's.
   */
  async stream(path: string, opts: RawCallOptions = {}): Promise<HttpResponse & { body: Readable }> {
    return this.exchange(opts.method ?? 'GET', path, undefined, opts);
  }

  /** A raw JSON call with full control (status codes, one node only). */
  async call(path: string, opts: RawCallOptions = {}): Promise<{ status: number; body: unknown; node: string }> {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const res = await this.exchange(opts.method ?? 'GET', path, body, opts);
    const text = await readBody(res.body);
    return { status: res.status, body: text ? JSON.parse(text) : undefined, node: res.node };
  }

  /**
   * Asks any node who the active node is and prefers it from then on, if it can be reached and its
   * certificate verifies: an advertised address may be a pod IP that a workstation cannot route to,
   * or that the certificate does not cover. Otherwise calls keep going through the configured
   * address (a Service: writes are forwarded to the active node; a standby may serve stale reads).
   */
  async findActiveNode(opts: CallOptions = {}): Promise<string> {
    // OpenBao leaves `is_self` out of a standby's answer (omitempty), so it is optional here.
    const leader = z.looseObject({ ha_enabled: z.boolean(), is_self: z.boolean().optional(), leader_address: z.string() });
    const res = leader.parse((await this.call('sys/leader', opts)).body);
    if (!res.ha_enabled || !res.leader_address) return this.preferred;
    const active = res.leader_address.replace(/\/+$/, '');
    if (active === this.preferred) return active;
    this.assertAllowed(active);
    try {
      await this.call('sys/leader', { ...opts, node: active, maxAttempts: 1, deadlineSeconds: Math.min(10, this.cfg.callDeadlineSeconds) });
      this.preferred = active;
    } catch (err) {
      if (!(err instanceof VaultUnreachableError)) throw err;
      this.log.warn({ node: active, via: this.preferred, err }, 'the active node’s advertised address does not answer from here; calls go through the configured address');
    }
    return this.preferred;
  }

  get currentNode(): string {
    return this.preferred;
  }

  close(): void {
    this.transport.close();
  }

  private unwrap<T>(method: string, path: string, res: unknown, data?: z.ZodType<T>): T {
    const env = envelope.safeParse(res);
    if (!env.success) throw new VaultResponseShapeError(method, path, issuesOf(env.error));
    if (!data) return env.data.data as T;
    const parsed = data.safeParse(env.data.data);
    if (!parsed.success) throw new VaultResponseShapeError(method, path, issuesOf(parsed.error));
    return parsed.data;
  }

  private async viaNodeVault(req: NodeVaultRequest): Promise<NodeVaultResponse> {
    const path = req.uri.startsWith(API_PREFIX) ? req.uri.slice(API_PREFIX.length) : req.uri;
    const body = req.json === undefined ? undefined : JSON.stringify(req.json);
    const res = await this.exchange(req.method, path, body, req as unknown as CallOptions);
    const text = await readBody(res.body);
    // node-vault treats only 200 and 204 as success; everything else was thrown in exchange.
    return { statusCode: res.status === 204 ? 204 : 200, body: text ? JSON.parse(text) : undefined, request: { path: `/v1/${path}` } };
  }

  private async exchange(method: string, path: string, body: string | undefined, opts: RawCallOptions): Promise<HttpResponse> {
    const idempotent = opts.idempotent ?? SAFE_METHODS.has(method);
    const signal = opts.signal ?? this.signal;
    const headers: Record<string, string> = {};
    if (this.nv.token) headers['x-vault-token'] = this.nv.token;
    if (this.cfg.namespace) headers['x-vault-namespace'] = this.cfg.namespace;
    // node-vault maps LIST to GET ?list=true when noCustomHTTPVerbs is on.
    const wire = method === 'LIST' ? 'GET' : method;
    const wirePath = method === 'LIST' && !path.includes('list=') ? `${path}${path.includes('?') ? '&' : '?'}list=true` : path;
    const shownPath = path.split('?')[0] ?? path;

    return withRetry(
      async () => {
        let node = opts.node ?? this.preferred;
        for (let hop = 0; ; hop++) {
          const res = await this.transport.send({
            method: wire,
            node,
            path: wirePath,
            headers,
            body,
            idleTimeoutMs: this.cfg.requestTimeoutSeconds * 1000,
            signal,
          });
          if ((res.status === 307 || res.status === 308) && !opts.noRedirect && !opts.node && hop < MAX_REDIRECTS) {
            // A standby answers some requests (the Raft snapshot) with a redirect to the active
            // node instead of forwarding them; the token is valid cluster-wide, so follow it.
            res.body.resume();
            const location = res.headers.location;
            if (!location) throw new VaultError(method, shownPath, res.status, ['redirect without Location'], node);
            node = new URL(location, node).origin;
            this.assertAllowed(node);
            this.preferred = node;
            this.log.debug({ path: shownPath, node }, 'following redirect to the active node');
            continue;
          }
          if (res.status >= 300 && !opts.acceptStatus?.includes(res.status) && !(opts.noRedirect && res.status < 400)) {
            throw new VaultError(method, shownPath, res.status, await errorList(res.body), node);
          }
          return res;
        }
      },
      {
        deadlineMs: (opts.deadlineSeconds ?? this.cfg.callDeadlineSeconds) * 1000,
        ...(opts.maxAttempts ? { maxAttempts: opts.maxAttempts } : {}),
        ...(signal ? { signal } : {}),
        retryable: (err) => {
          const retry = isRetryable(err, idempotent);
          // Another node may answer where this one did not; the active node is found again by redirect.
          if (retry && !opts.node && err instanceof VaultUnreachableError) this.rotate(err.node);
          return retry;
        },
        onRetry: ({ attempt, delayMs, error }) => this.log.warn({ path: shownPath, attempt, delayMs, err: error }, 'Vault call failed; retrying'),
      },
    );
  }

  private rotate(failed: string): void {
    if (this.preferred !== failed) return;
    const i = this.nodes.indexOf(failed);
    this.preferred = this.nodes[(i + 1) % this.nodes.length] ?? this.nodes[0]!;
  }

  private assertAllowed(address: string): void {
    const url = new URL(address);
    if (url.protocol === 'http:' && !isLoopback(address) && !this.cfg.allowInsecureHttp) {
      throw new Error(
        `refusing plain http:// to ${url.host}: tokens would cross the network unencrypted (use https, or set vault.allowInsecureHttp)`,
      );
    }
  }
}

/** Connection failures, 429, 5xx. A write that is not idempotent is retried only if it was never sent. */
export function isRetryable(err: unknown, idempotent: boolean): boolean {
  if (err instanceof VaultTlsError) return false;
  if (err instanceof VaultUnreachableError) return idempotent || err.neverSent;
  if (err instanceof VaultError) return idempotent && (err.status === 429 || err.status >= 500);
  return false;
}

async function errorList(body: Readable): Promise<string[]> {
  try {
    const parsed = z.object({ errors: z.array(z.string()) }).safeParse(JSON.parse(await readBody(body, 64 * 1024)));
    return parsed.success ? parsed.data.errors : [];
  } catch {
    return [];
  }
}

function issuesOf(err: z.ZodError): string[] {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
}
