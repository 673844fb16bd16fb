// Just enough HTTP for the stack scripts: OpenBao's API (HTTPS with the stack's CA, or plain) and the
// kube-apiserver (HTTPS with the stack's own CA). Deliberately independent of packages/vault.
import { readFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request } from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { paths } from './layout.ts';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * The stack's TLS trust for OpenBao: its CA, and the service name every node's certificate
 * carries. Nodes are asked by their own (per-node) address, which their certificates do not
 * cover, exactly as vault-helm's pods are; these scripts check the certificate against the
 * service name instead, as Raft's retry_join does with leader_tls_servername.
 */
export interface BaoTls {
  caFile: string;
  serverName: string;
}
let baoTls: BaoTls | undefined;
export function useBaoTls(tls: BaoTls | undefined): void {
  baoTls = tls;
}

export async function baoApi<T = any>(
  addr: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; redirect?: 'follow' | 'manual'; timeoutMs?: number } = {},
): Promise<ApiResponse<T>> {
  const payload = opts.body !== undefined ? JSON.stringify(opts.body) : undefined;
  const url = new URL(`/v1/${path}`, addr);
  const res = await new Promise<{ status: number; headers: Headers; text: string }>((resolvePromise, reject) => {
    const req = baoRequest(url, {
      method,
      headers: {
        ...(opts.token ? { 'X-Vault-Token': opts.token } : {}),
        ...(payload !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}),
      },
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('error', reject);
      r.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(r.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolvePromise({ status: r.statusCode ?? 0, headers, text: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
  const location = res.headers.get('location');
  if ((opts.redirect ?? 'follow') === 'follow' && (res.status === 307 || res.status === 308) && location) {
    return baoApi<T>(new URL(location, addr).origin, method, path, { ...opts, redirect: 'manual' });
  }
  let body: any = res.text;
  try {
    body = res.text ? JSON.parse(res.text) : undefined;
  } catch {
    // not JSON (e.g. a snapshot): keep the text
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

/** node:http(s) request to an OpenBao node or Service, with the stack's TLS trust when it is https. */
export function baoRequest(url: URL, options: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest {
  if (url.protocol !== 'https:') return httpRequest(url, options, onResponse);
  const tls = baoTls ?? defaultBaoTls();
  return request(url, {
    ...options,
    ...(tls ? { ca: readFileSync(tls.caFile, 'utf8'), checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(tls.serverName, cert) } : {}),
  }, onResponse);
}

/** The running stack's OpenBao TLS settings, read from stack.json (tests do not call useBaoTls). */
function defaultBaoTls(): BaoTls | undefined {
  try {
    const stack = JSON.parse(readFileSync(paths.stackJson, 'utf8'));
    return stack.openbao?.tls ?? undefined;
  } catch {
    return undefined;
  }
}

/** Like baoApi, but throws unless the status is 2xx. */
export async function baoOk<T = any>(addr: string, method: string, path: string, opts: Parameters<typeof baoApi>[3] = {}): Promise<T> {
  const res = await baoApi<T>(addr, method, path, opts);
  if (res.status < 200 || res.status > 299) {
    throw new Error(`${method} ${addr}/v1/${path} -> ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

export interface KubeTarget {
  server: string; // https://127.0.0.1:16443
  ca: string; // PEM
  token: string; // bearer token
}

export function kubeApi<T = any>(target: KubeTarget, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  return new Promise((resolvePromise, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${target.server}${path}`,
      {
        method,
        ca: target.ca,
        headers: {
          Authorization: `Bearer ${target.token}`,
          Accept: 'application/json',
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}),
        },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // plain text (e.g. /readyz)
          }
          resolvePromise({ status: res.statusCode ?? 0, body: parsed as T });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Polls `probe` until it returns a value other than undefined/false; throws `what` on timeout with the last error. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : last !== undefined ? `: ${String(last)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}
