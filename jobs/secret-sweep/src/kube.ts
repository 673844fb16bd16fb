import { ApiException, ApisApi, CoreV1Api, CustomObjectsApi, KubeConfig, Observable, type ConfigurationOptions, type ObservableMiddleware } from '@kubernetes/client-node';
import { AbortedError, JobFailure, scrubSecrets, withRetry, type Logger } from '@vaultkeeper/runtime';

/**
 * A non-OK answer from the apiserver, reduced to what is safe to log: the operation, the HTTP
 * status and the Status object's reason and message. The client's own ApiException puts the
 * whole response body into its message, and for Secrets that body can be the Secret itself.
 */
export class KubeError extends Error {
  override readonly name = 'KubeError';
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly reason: string | undefined,
    detail: string | undefined,
  ) {
    super(`Kubernetes ${operation} answered ${status}${reason ? ` ${reason}` : ''}${detail ? `: ${detail}` : ''}`);
  }
}

/** The apiserver could not be reached, or a request timed out. */
export class KubeUnreachableError extends Error {
  override readonly name = 'KubeUnreachableError';
  constructor(
    readonly operation: string,
    readonly code: string,
  ) {
    super(`Kubernetes ${operation}: ${code}`);
  }
}

export function toKubeError(operation: string, err: unknown): Error {
  if (err instanceof ApiException) {
    let reason: string | undefined;
    let message: string | undefined;
    try {
      const body: unknown = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      if (body && typeof body === 'object' && (body as { kind?: unknown }).kind === 'Status') {
        const status = body as { reason?: unknown; message?: unknown };
        if (typeof status.reason === 'string') reason = status.reason;
        // A Status message names objects and fields, not data; cut it short all the same.
        if (typeof status.message === 'string') message = scrubSecrets(status.message.slice(0, 300));
      }
    } catch {
      // not JSON: say nothing of it
    }
    return new KubeError(operation, err.code, reason, message);
  }
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return err;
  if (err instanceof Error) {
    const cause = err.cause as { code?: unknown } | undefined;
    const code = typeof cause?.code === 'string' ? cause.code : err.name;
    return new KubeUnreachableError(operation, code);
  }
  return new KubeUnreachableError(operation, 'unknown error');
}

/** 429 (API priority and fairness), 5xx, timeouts and connection failures are worth another try. */
export function isRetryableKube(err: unknown): boolean {
  if (err instanceof KubeError) return err.status === 429 || (err.status >= 500 && err.status !== 501);
  return err instanceof KubeUnreachableError || (err instanceof Error && err.name === 'TimeoutError');
}

export interface KubeOptions {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  requestDeadlineSeconds: number;
}

/** The APIs of one cluster the job uses, with the job's abort signal, a per-request deadline and safe errors. */
export interface KubeApis {
  core: CoreV1Api;
  /** Lists of any group but the core one, as plain JSON (no model objects to build per item). */
  custom: CustomObjectsApi;
  /** Discovery: which API groups (and so which CRDs) the cluster serves. */
  apis: ApisApi;
}

export class Kube {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  readonly apis: ApisApi;
  constructor(
    api: KubeApis,
    readonly server: string,
    private readonly log: Logger,
    private readonly signal: AbortSignal | undefined,
    private readonly deadlineMs: number,
  ) {
    this.core = api.core;
    this.custom = api.custom;
    this.apis = api.apis;
  }

  /**
   * Runs one API call. Reads (`retry: true`) are retried with the shared backoff helper; writes
   * are not: a delete with preconditions that timed out is checked by the caller instead.
   */
  async call<T>(operation: string, fn: (options: ConfigurationOptions) => Promise<T>, opts: { retry: boolean }): Promise<T> {
    const once = async (): Promise<T> => {
      const timeout = AbortSignal.timeout(this.deadlineMs);
      const signal = this.signal ? AbortSignal.any([this.signal, timeout]) : timeout;
      // The object-parameter API hands these options to the observable layer underneath, so
      // the middleware returns the client's own Observable.
      const withSignal: ObservableMiddleware = {
        pre: (ctx) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (res) => new Observable(Promise.resolve(res)),
      };
      try {
        return await fn({ middleware: [withSignal], middlewareMergeStrategy: 'append' });
      } catch (err) {
        if (this.signal?.aborted) throw new AbortedError(String(this.signal.reason ?? 'aborted'));
        if (timeout.aborted) throw new KubeUnreachableError(operation, 'ETIMEDOUT');
        throw toKubeError(operation, err);
      }
    };
    if (!opts.retry) return once();
    return withRetry(once, {
      deadlineMs: this.deadlineMs * 2,
      maxAttempts: 5,
      ...(this.signal ? { signal: this.signal } : {}),
      retryable: isRetryableKube,
      onRetry: ({ attempt, delayMs, error }) => this.log.warn({ operation, attempt, delayMs, err: error }, 'Kubernetes call failed; retrying'),
    });
  }
}

export function connectKube(opts: KubeOptions, log: Logger, signal?: AbortSignal): Kube {
  const kc = new KubeConfig();
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromCluster();
    if (opts.context) kc.setCurrentContext(opts.context);
  } catch (err) {
    throw new JobFailure(`cannot load the Kubernetes config${opts.kubeconfig ? ` from ${opts.kubeconfig}` : ''}: ${(err as Error).message}`);
  }
  const server = kc.getCurrentCluster()?.server;
  if (!server || server.includes('undefined')) {
    throw new JobFailure('no Kubernetes API to talk to: set KUBECONFIG (kubernetes.kubeconfig) or run in a pod with a service-account token');
  }
  const api = { core: kc.makeApiClient(CoreV1Api), custom: kc.makeApiClient(CustomObjectsApi), apis: kc.makeApiClient(ApisApi) };
  return new Kube(api, server, log, signal, opts.requestDeadlineSeconds * 1000);
}
