// The KMS and S3 clients (built by @vaultkeeper/aws), set up so that a probe can never hang or
// hammer: a connect and a request timeout on the handler, few attempts, and a per-call abort
// signal on top (callSignal).
import type { AwsClientOptions } from '@vaultkeeper/aws';

export interface ProbeClientOptions {
  region: string | undefined;
  endpoint: string | undefined;
  callTimeoutSeconds: number;
  maxAttempts: number;
}

/** The handler's own timeouts cover connect and the whole exchange; callSignal covers the call with its retries. */
export function probeClientOptions(opts: ProbeClientOptions): AwsClientOptions {
  return {
    region: opts.region,
    endpoint: opts.endpoint,
    connectTimeoutSeconds: opts.callTimeoutSeconds,
    requestTimeoutSeconds: opts.callTimeoutSeconds,
    maxAttempts: opts.maxAttempts,
  };
}

/** The bound of one call: the run's signal (deadline, SIGTERM) or this call's own timeout. */
export function callSignal(run: AbortSignal, timeoutSeconds: number): AbortSignal {
  return AbortSignal.any([run, AbortSignal.timeout(Math.ceil(timeoutSeconds * 1000))]);
}
