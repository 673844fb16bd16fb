// The Authentik side of the job: the API token comes from Vault KV through the shared client
// (never the environment), every call goes through the one retry helper, and only transport
// errors, timeouts, 429 and 5xx are retried (AuthentikError.retryable).
import { createAuthentikClient, isAuthentikError, type AuthentikClient } from '@vaultkeeper/authentik';
import { JobFailure, registerSecret, withRetry, z, type Logger } from '@vaultkeeper/runtime';
import { isLoopback, VaultError, type VaultClient } from '@vaultkeeper/vault';

export interface AuthentikConnectionInput {
  vault: VaultClient;
  log: Logger;
  signal: AbortSignal;
  url: string;
  kvMount: string;
  apiTokenPath: string;
  apiTokenField: string;
  requestTimeoutSeconds: number;
  callDeadlineSeconds: number;
  allowInsecureHttp: boolean;
}

export async function readAuthentikApiToken(vault: VaultClient, kvMount: string, path: string, fieldName: string): Promise<string> {
  const where = `${kvMount}/data/${path}`;
  let data: Record<string, unknown>;
  try {
    ({ data } = await vault.read(where, z.object({ data: z.record(z.string(), z.unknown()) })));
  } catch (err) {
    if (err instanceof VaultError && err.status === 404) {
      throw new JobFailure(`no Authentik API token in Vault at ${where}: store a non-expiring API-intent token there (field ${fieldName})`);
    }
    throw err;
  }
  const token = data[fieldName];
  if (typeof token !== 'string' || token === '') {
    throw new JobFailure(`the KV secret ${where} has no non-empty string field "${fieldName}" (the Authentik API token)`);
  }
  registerSecret(token);
  return token;
}

/** An Authentik client whose every call is retried under one deadline. */
export async function connectAuthentik(input: AuthentikConnectionInput): Promise<AuthentikClient> {
  const url = new URL(input.url);
  if (url.protocol === 'http:' && !isLoopback(input.url) && !input.allowInsecureHttp) {
    throw new JobFailure(`refusing plain http:// to Authentik at ${url.host}: the API token and client secrets would cross the network in clear (use https, or set authentik.allowInsecureHttp)`);
  }
  const token = await readAuthentikApiToken(input.vault, input.kvMount, input.apiTokenPath, input.apiTokenField);
  const client = createAuthentikClient({ baseUrl: input.url, token, timeoutMs: input.requestTimeoutSeconds * 1000, signal: input.signal });
  const retrying = <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      withRetry(() => fn(...args), {
        deadlineMs: input.callDeadlineSeconds * 1000,
        signal: input.signal,
        retryable: (err) => isAuthentikError(err) && err.retryable,
        onRetry: ({ attempt, delayMs, error }) => input.log.warn({ call: name, attempt, delayMs, err: error }, 'Authentik call failed; retrying'),
      });
  return {
    getProvider: retrying('getProvider', client.getProvider),
    findProviderByClientId: retrying('findProviderByClientId', client.findProviderByClientId),
    getApplication: retrying('getApplication', client.getApplication),
    // Setting the same value twice has the same result, so a PATCH that got no answer is safe to repeat.
    setProviderClientSecret: retrying('setProviderClientSecret', client.setProviderClientSecret),
    checkClientSecret: retrying('checkClientSecret', client.checkClientSecret),
    getOpenIdConfiguration: retrying('getOpenIdConfiguration', client.getOpenIdConfiguration),
  };
}
