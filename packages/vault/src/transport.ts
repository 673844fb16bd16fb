import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { VaultUnreachableError } from './errors.ts';

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Readable;
  node: string;
}

export interface SendOptions {
  method: string;
  /** Base address of the node, e.g. https://vault-0.vault-internal:8200 */
  node: string;
  /** Path below /v1/, without leading slash; may carry a query string. */
  path: string;
  headers: Record<string, string>;
  body?: string | undefined;
  /** Socket inactivity limit: covers connect, waiting for headers and every gap while streaming. */
  idleTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

// Error codes that mean the request never reached Vault, so retrying cannot repeat a write.
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * One HTTP exchange with one Vault node over node:http(s), body left as a stream so that the
 * caller decides whether to parse it (JSON API) or pipe it (Raft snapshot).
 */
export class Transport {
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true });

  constructor(ca?: string) {
    this.httpsAgent = new https.Agent({ keepAlive: true, ...(ca ? { ca } : {}) });
  }

  send(opts: SendOptions): Promise<HttpResponse> {
    const url = new URL(`/v1/${opts.path}`, opts.node);
    const isHttps = url.protocol === 'https:';
    const pathOnly = opts.path.split('?')[0] ?? opts.path;
    return new Promise((resolve, reject) => {
      const req = (isHttps ? https : http).request(url, {
        method: opts.method,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        headers: {
          ...opts.headers,
          ...(opts.body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(opts.body) } : {}),
        },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      let connected = false;
      req.on('socket', (socket) => {
        if (!socket.connecting) connected = true;
        else socket.once('connect', () => (connected = true));
      });
      req.setTimeout(opts.idleTimeoutMs, () => {
        req.destroy(Object.assign(new Error('idle timeout'), { code: 'ETIMEDOUT' }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') return reject(err);
        const code = err.code ?? 'ECONNRESET';
        reject(new VaultUnreachableError(opts.method, pathOnly, code, opts.node, !connected && NEVER_SENT.has(code)));
      });
      req.on('response', (res) => {
        // The idle timer must keep guarding the body: a stalled stream is a failure, not a hang.
        res.on('error', () => undefined);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, node: opts.node });
      });
      req.end(opts.body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

export async function readBody(body: Readable, limitBytes = 32 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limitBytes) {
      body.destroy();
      throw new Error(`response larger than ${limitBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
