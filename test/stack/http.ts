// Just enough HTTP for the stack scripts: OpenBao's API (plain HTTP on loopback) and the
// kube-apiserver (HTTPS with the stack's own CA). Deliberately independent of packages/vault.
import { request } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function baoApi<T = any>(
  addr: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; redirect?: 'follow' | 'manual' | 'error'; timeoutMs?: number } = {},
): Promise<ApiResponse<T>> {
  const res = await fetch(`${addr}/v1/${path}`, {
    method,
    headers: {
      ...(opts.token ? { 'X-Vault-Token': opts.token } : {}),
      ...(opts.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : null,
    redirect: opts.redirect ?? 'follow',
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON (e.g. a snapshot): keep the text
  }
  return { status: res.status, body: body as T, headers: res.headers };
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
