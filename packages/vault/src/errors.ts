/**
 * A non-OK answer from Vault. Carries what an operator needs (method, path, status and Vault's
 * own `errors` list) and never a request body, a token or a response body that might hold a secret.
 */
export class VaultError extends Error {
  override readonly name = 'VaultError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly errors: string[] = [],
    /** The node that answered, e.g. http://127.0.0.1:8200. */
    readonly node?: string,
  ) {
    super(`Vault ${method} /v1/${path} answered ${status}${errors.length ? `: ${errors.join('; ')}` : ''}`);
  }

  get isPermissionDenied(): boolean {
    return this.status === 403;
  }
}

/** Vault could not be reached at all (connection refused, reset, timed out, DNS). */
export class VaultUnreachableError extends Error {
  override readonly name: string = 'VaultUnreachableError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly code: string,
    readonly node: string,
    /** True when the request was certainly never sent, so even a non-idempotent one may be retried. */
    readonly neverSent: boolean,
  ) {
    super(`Vault ${method} /v1/${path} at ${node}: ${code}`);
  }
}

/**
 * The node's certificate did not verify. Never retried (a certificate does not fix itself), and
 * the message says which setting decides it. Still a VaultUnreachableError: nothing was sent.
 */
export class VaultTlsError extends VaultUnreachableError {
  override readonly name = 'VaultTlsError';
  constructor(method: string, path: string, code: string, node: string, readonly hint: string) {
    super(method, path, code, node, true);
    this.message = `Vault ${method} /v1/${path} at ${node}: TLS: ${code}: ${hint}`;
  }
}

/** A response that did not have the shape we rely on. Names the fields, never their values. */
export class VaultResponseShapeError extends Error {
  override readonly name = 'VaultResponseShapeError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly issues: string[],
  ) {
    super(`Vault ${method} /v1/${path}: unexpected response shape (${issues.join('; ')})`);
  }
}
