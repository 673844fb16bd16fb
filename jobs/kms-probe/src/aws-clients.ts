// The KMS and S3 clients, built so that a probe can never hang or hammer: a connect timeout and
// an idle timeout on the socket, few attempts, and a per-call abort signal on top (callSignal).
import { KMSClient } from '@aws-sdk/client-kms';
import { registerSecret } from '@vaultkeeper/runtime';

export interface AwsClientOptions {
  region: string | undefined;
  endpoint: string | undefined;
  callTimeoutSeconds: number;
  maxAttempts: number;
}

/** Settings both SDK clients share (the S3 one is built in checks/snapshot-age.ts, loaded only when used). */
export function commonClientConfig(opts: AwsClientOptions) {
  const ms = Math.ceil(opts.callTimeoutSeconds * 1000);
  return {
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    maxAttempts: opts.maxAttempts,
    // The handler's own timeouts cover connect and the whole exchange; callSignal covers the call
    // with its retries. smithy only warns on a requestTimeout (on the console) unless told to throw.
    requestHandler: { connectionTimeout: ms, requestTimeout: ms, throwOnRequestTimeout: true },
  };
}

export function createKmsClient(opts: AwsClientOptions): KMSClient {
  return new KMSClient(commonClientConfig(opts));
}

/** The bound of one call: the run's signal (deadline, SIGTERM) or this call's own timeout. */
export function callSignal(run: AbortSignal, timeoutSeconds: number): AbortSignal {
  return AbortSignal.any([run, AbortSignal.timeout(Math.ceil(timeoutSeconds * 1000))]);
}

/**
 * Registers the resolved credentials' secret parts with the log scrubber, in case an SDK error
 * message ever quotes them. Resolution failures are left to the first real call to report.
 */
export async function registerAwsCredentials(client: KMSClient, timeoutSeconds: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    // Bounded: a web-identity exchange with an unreachable STS must not eat the run's deadline.
    const creds = await Promise.race([
      client.config.credentials(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('credentials timeout')), timeoutSeconds * 1000);
      }),
    ]);
    registerSecret(creds.secretAccessKey);
    registerSecret(creds.sessionToken);
  } catch {
    // No credentials (yet): the first KMS call reports it, classified as denied or unreachable.
  } finally {
    clearTimeout(timer);
  }
}
