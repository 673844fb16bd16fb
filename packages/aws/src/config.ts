// The SDK client config every vaultkeeper AWS client shares, and the credentials' scrubbing.
// No SDK import here: a job that loads S3 only when needed must not pay for it at start-up.
import { registerSecret } from '@vaultkeeper/runtime';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface AwsClientOptions {
  region?: string | undefined;
  endpoint?: string | undefined;
  /** S3 only: bucket in the path rather than the host name (MinIO, moto, most S3 look-alikes). */
  forcePathStyle?: boolean | undefined;
  /** Limit on establishing the connection. Unset: the SDK's default (none). */
  connectTimeoutSeconds?: number | undefined;
  /** Limit on one request, from sending it to its response. Unset: the SDK's default (none). */
  requestTimeoutSeconds?: number | undefined;
  /**
   * Limit on silence: a request whose connection moves no byte either way for this long fails.
   * For requests that may rightly take long (a large part upload), instead of a total limit.
   */
  idleTimeoutSeconds?: number | undefined;
  /** Attempts per call, the first included. Unset: the SDK's default (3). */
  maxAttempts?: number | undefined;
  /** Static credentials. Unset: the SDK's default provider chain. */
  credentials?: AwsCredentials | undefined;
}

const ms = (seconds: number) => Math.ceil(seconds * 1000);

/** The SDK client config the options describe; keys for unset options are left out, so the SDK's defaults apply. */
export function awsClientConfig(opts: AwsClientOptions) {
  const connect = opts.connectTimeoutSeconds;
  const request = opts.requestTimeoutSeconds;
  const handler = {
    ...(connect !== undefined ? { connectionTimeout: ms(connect) } : {}),
    // smithy only warns about a requestTimeout (on the console) unless told to throw.
    ...(request !== undefined ? { requestTimeout: ms(request), throwOnRequestTimeout: true } : {}),
    ...(opts.idleTimeoutSeconds !== undefined ? { socketTimeout: ms(opts.idleTimeoutSeconds) } : {}),
  };
  return {
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.forcePathStyle !== undefined ? { forcePathStyle: opts.forcePathStyle } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
    ...(Object.keys(handler).length ? { requestHandler: handler } : {}),
  };
}

/** Any SDK v3 client: its resolved config carries the credential provider. */
export interface ClientWithCredentials {
  config: { credentials: () => Promise<{ secretAccessKey: string; sessionToken?: string | undefined }> };
}

/**
 * Registers the resolved credentials' secret parts with the log scrubber, in case an SDK error
 * message ever quotes them. Resolution failures are left to the first real call to report.
 */
export async function registerAwsCredentials(client: ClientWithCredentials, timeoutSeconds: number): Promise<void> {
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
    // No credentials (yet): the first real call reports it, classified as denied or unreachable.
  } finally {
    clearTimeout(timer);
  }
}
