import { defineConfig, field, z } from '@vaultkeeper/runtime';

/** The `vault` section every job's config has, and the standard VAULT_* variables that set it. */
export const vaultConfig = defineConfig({
  shape: {
    // A missing section is parsed as {} so that the error names vault.address, not just vault.
    vault: z.preprocess((v) => v ?? {}, z.strictObject({
      address: field.url(),
      /** Other nodes of the same cluster, tried when `address` does not answer. */
      fallbackAddresses: field.list(field.url()).default([]),
      caCert: z.string().min(1).optional(),
      /**
       * The name every node's certificate is checked against (and sent as SNI), as the Vault CLI's
       * VAULT_TLS_SERVER_NAME. Unset: a node's own host name, or else the host of vault.address.
       */
      tlsServerName: field.nonEmpty().optional(),
      namespace: z.string().min(1).optional(),
      /** Plain http:// is refused unless the address is loopback or this is set. */
      allowInsecureHttp: field.bool().default(false),
      auth: z
        .strictObject({
          /** `kubernetes` in a cluster; `token` for local runs (VAULT_TOKEN or ~/.vault-token). */
          method: z.enum(['kubernetes', 'token']).optional(),
          mount: field.nonEmpty().default('kubernetes'),
          role: field.nonEmpty().optional(),
          tokenPath: field.nonEmpty().default('/var/run/secrets/vaultkeeper/token'),
        })
        .default({ mount: 'kubernetes', tokenPath: '/var/run/secrets/vaultkeeper/token' }),
      token: z.string().min(1).optional(),
      /** Longest silence on one connection, also between chunks of a streamed body. */
      requestTimeoutSeconds: field.seconds(1).default(30),
      /** Overall limit for one logical call including its retries. */
      callDeadlineSeconds: field.seconds(1).default(90),
    })),
  },
  env: {
    VAULT_ADDR: { path: 'vault.address', doc: 'Vault address, e.g. https://vault-active.vault:8200 (required)' },
    VAULT_FALLBACK_ADDRS: { path: 'vault.fallbackAddresses', doc: 'comma-separated other node addresses to try when VAULT_ADDR fails' },
    VAULT_CACERT: { path: 'vault.caCert', doc: 'PEM file of the CA that signed Vault’s certificate' },
    VAULT_TLS_SERVER_NAME: { path: 'vault.tlsServerName', doc: 'name to verify every node’s certificate against (default: the node’s host, else VAULT_ADDR’s host)' },
    VAULT_NAMESPACE: { path: 'vault.namespace', doc: 'Vault Enterprise namespace (sent as X-Vault-Namespace)' },
    VAULT_ALLOW_INSECURE_HTTP: { path: 'vault.allowInsecureHttp', doc: 'allow http:// to a non-loopback address (default false)' },
    VAULT_AUTH_METHOD: { path: 'vault.auth.method', doc: 'kubernetes or token (default: kubernetes when a role is set)' },
    VAULT_AUTH_MOUNT: { path: 'vault.auth.mount', doc: 'mount of the Kubernetes auth method (default kubernetes)' },
    VAULT_AUTH_ROLE: { path: 'vault.auth.role', doc: 'Kubernetes auth role of this job' },
    VAULT_AUTH_TOKEN_PATH: {
      path: 'vault.auth.tokenPath',
      doc: 'projected service-account token file (default /var/run/secrets/vaultkeeper/token)',
    },
    VAULT_TOKEN: { path: 'vault.token', doc: 'a Vault token, for local runs (else ~/.vault-token)', secret: true },
    VAULT_REQUEST_TIMEOUT: { path: 'vault.requestTimeoutSeconds', doc: 'idle timeout of one request (default 30s)' },
    VAULT_CALL_DEADLINE: { path: 'vault.callDeadlineSeconds', doc: 'deadline of one call with its retries (default 90s)' },
  },
});

export type VaultConfig = z.infer<(typeof vaultConfig)['shape']['vault']>;

export function isLoopback(address: string): boolean {
  const host = new URL(address).hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
