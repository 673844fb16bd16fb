/**
 * What went wrong talking to Authentik:
 * - `http`: Authentik answered with a status the call does not accept (`status` is that status);
 * - `transport`: no answer (connection refused, DNS, TLS, reset); `status` is 0;
 * - `timeout`: no answer within `timeoutMs`; `status` is 0;
 * - `schema`: a 2xx answer that lacks a field vaultkeeper relies on (`status` is the 2xx status).
 */
export type AuthentikErrorKind = 'http' | 'transport' | 'timeout' | 'schema';

export interface AuthentikErrorInit {
  kind: AuthentikErrorKind;
  status: number;
  method: string;
  path: string;
  detail?: string;
  cause?: unknown;
}

/**
 * A failed Authentik call. The message names the method, the path (never the query string) and
 * the status, plus Authentik's own short `detail` when it gave one. It never carries a request
 * body, the API token or a client secret: the client scrubs those out of `detail` before it
 * gets here, because DRF error texts can echo input.
 */
export class AuthentikError extends Error {
  override readonly name = 'AuthentikError';
  readonly kind: AuthentikErrorKind;
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly detail: string | undefined;

  constructor(init: AuthentikErrorInit) {
    const what = init.kind === 'http' || init.kind === 'schema' ? `HTTP ${init.status}` : init.kind;
    super(
      `Authentik ${init.method} ${init.path} failed (${what})${init.detail ? `: ${init.detail}` : ''}`,
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.kind = init.kind;
    this.status = init.status;
    this.method = init.method;
    this.path = init.path;
    this.detail = init.detail;
  }

  /** Worth another attempt: no answer, a timeout, 429 or a 5xx. Never a 4xx or a bad response shape. */
  get retryable(): boolean {
    return this.kind === 'transport' || this.kind === 'timeout' || this.status === 429 || this.status >= 500;
  }
}

export function isAuthentikError(err: unknown): err is AuthentikError {
  return err instanceof AuthentikError;
}
