import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { VaultTlsError, VaultUnreachableError } from './errors.ts';

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

// OpenSSL's verification results as Node reports them: the CA is not the one that signed it.
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED',
]);
const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);
const NAME_MISMATCH = 'ERR_TLS_CERT_ALTNAME_INVALID';

export interface TlsOptions {
  /** PEM of the CA(s) to trust instead of the system's. */
  ca?: string | undefined;
  /** Check every node's certificate against this name (vault.tlsServerName). */
  serverName?: string | undefined;
  /**
   * The name a node's certificate may be checked against when it does not cover the node's own
   * address: the host of vault.address. vault-helm advertises pod IPs that certificates issued
   * for the Service do not name; such a node is still one of the cluster when its certificate,
   * signed by the trusted CA, is valid for the address the job was configured with.
   */
  clusterName?: string | undefined;
}

/**
 * One HTTP exchange with one Vault node over node:http(s), body left as a stream so that the
 * caller decides whether to parse it (JSON API) or pipe it (Raft snapshot).
 */
export class Transport {
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent = new http.Agent({ keepAlive: true });
  /** Nodes whose certificate is checked against the cluster's name instead of their own host. */
  private readonly verifiedAsCluster = new Set<string>();

  constructor(
    private readonly tls: TlsOptions = {},
    /** Told once per node that is verified by the cluster's name. */
    private readonly onClusterNameUsed: (node: string, name: string) => void = () => undefined,
  ) {
    this.httpsAgent = new https.Agent({ keepAlive: true, ...(tls.ca ? { ca: tls.ca } : {}) });
  }

  async send(opts: SendOptions): Promise<HttpResponse> {
    const node = new URL(opts.node).origin;
    const byClusterName = this.verifiedAsCluster.has(node);
    try {
      return await this.sendOnce(opts);
    } catch (err) {
      // A handshake that failed sent nothing: ask again, checking the certificate by the cluster's name.
      const name = this.tls.clusterName;
      if (!(err instanceof VaultTlsError) || err.code !== NAME_MISMATCH || byClusterName || !name || this.tls.serverName) throw err;
      if (hostOf(node) === name) throw err;
      const first = !this.verifiedAsCluster.has(node); // concurrent calls may have got here first
      this.verifiedAsCluster.add(node);
      try {
        const res = await this.sendOnce(opts);
        if (first) this.onClusterNameUsed(node, name);
        return res;
      } catch (again) {
        if (again instanceof VaultTlsError) this.verifiedAsCluster.delete(node);
        throw again;
      }
    }
  }

  private sendOnce(opts: SendOptions): Promise<HttpResponse> {
    const url = new URL(`/v1/${opts.path}`, opts.node);
    const isHttps = url.protocol === 'https:';
    const pathOnly = opts.path.split('?')[0] ?? opts.path;
    const verifyAs = isHttps ? (this.tls.serverName ?? (this.verifiedAsCluster.has(url.origin) ? this.tls.clusterName : undefined)) : undefined;
    return new Promise((resolve, reject) => {
      const req = (isHttps ? https : http).request(url, {
        method: opts.method,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        ...(verifyAs
          ? {
              // SNI may carry a DNS name only; an IP is checked against the certificate all the same.
              ...(isIP(verifyAs) ? {} : { servername: verifyAs }),
              checkServerIdentity: (_host: string, cert: PeerCertificate) => checkServerIdentity(verifyAs, cert),
            }
          : {}),
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
        const hint = isHttps ? tlsHint(code, hostOf(url.origin), verifyAs) : undefined;
        if (hint) return reject(new VaultTlsError(opts.method, pathOnly, code, opts.node, hint));
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

function hostOf(address: string): string {
  return new URL(address).hostname.replace(/^\[|\]$/g, '');
}

/** What to do about a certificate that did not verify; undefined when `code` is not a TLS verification failure. */
function tlsHint(code: string, host: string, verifiedAs: string | undefined): string | undefined {
  if (UNTRUSTED.has(code)) return 'the certificate is not signed by a trusted CA: set vault.caCert (VAULT_CACERT) to the PEM of the CA that signed it';
  if (EXPIRED.has(code)) return 'the certificate is expired or not yet valid: renew it on the Vault nodes';
  if (code === NAME_MISMATCH) {
    return verifiedAs
      ? `the certificate does not cover ${verifiedAs}: set vault.tlsServerName (VAULT_TLS_SERVER_NAME) to a name it covers`
      : `the certificate does not cover ${host}: use an address it covers, or set vault.tlsServerName (VAULT_TLS_SERVER_NAME)`;
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO') return 'no TLS on the other end: is this a plain http:// listener?';
  return undefined;
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
