// The job's own settings, in one place: every field, its default and the variable that sets it.
// Nothing else in the job reads process.env. The Authentik API token is deliberately not here:
// it is read from Vault KV at run time (authentik.apiTokenPath), never from the environment or
// an argument, so it cannot end up in a pod spec, a shell history or `ps`.
import { ConfigError, defineConfig, field, mergeSpecs, z } from '@vaultkeeper/runtime';
import { KV_RECORDS } from '@vaultkeeper/records';
import { vaultConfig } from '@vaultkeeper/vault';

const DAY = 86_400;

/** A path inside a KV v2 mount, without the mount and without `data/`. */
const kvPath = (what: string) =>
  field
    .nonEmpty(what)
    .refine((s) => !s.startsWith('/') && !s.endsWith('/') && !s.split('/').includes('..'), `must be ${what}`);

export const rotationConfig = defineConfig({
  shape: {
    authentik: z
      .strictObject({
        /**
         * Authentik's origin, e.g. https://auth.example.com. Unset: taken from Vault's
         * oidc_discovery_url when that has Authentik's per-provider form <origin>/application/o/<slug>/.
         */
        url: field.url('an absolute http(s) URL such as https://auth.example.com').optional(),
        /**
         * Slug of the Authentik application the provider must belong to. Unset: the <slug> of
         * Vault's oidc_discovery_url. The provider is this application's unless providerId or
         * clientId pins it.
         */
        application: z
          .string({ error: 'must be an application slug' })
          .regex(/^[-a-zA-Z0-9_]+$/, 'must be an application slug ([-a-zA-Z0-9_]+)')
          .optional(),
        /** Pins the provider by its numeric ID (it must still belong to `application`). */
        providerId: field.int(1).optional(),
        /** Pins the provider by its client_id (looked up with ?client_id=). */
        clientId: field.nonEmpty('a client_id').optional(),
        /** KV v2 path (inside kvMount) of the Authentik API token; a non-expiring API-intent token. */
        apiTokenPath: kvPath('a KV path such as vaultkeeper/authentik/api-token').default('vaultkeeper/authentik/api-token'),
        apiTokenField: field.nonEmpty('a field name').default('token'),
        /** Bounds one Authentik request (send, wait, read the body). */
        requestTimeoutSeconds: field.seconds(1).default(10),
        /** Bounds one Authentik call including its retries (transport errors, 429, 5xx). */
        callDeadlineSeconds: field.seconds(1).default(60),
        /** Plain http:// to a non-loopback Authentik is refused unless this is set (the API token would cross the network in clear). */
        allowInsecureHttp: field.bool().default(false),
      })
      .default({
        apiTokenPath: 'vaultkeeper/authentik/api-token',
        apiTokenField: 'token',
        requestTimeoutSeconds: 10,
        callDeadlineSeconds: 60,
        allowInsecureHttp: false,
      }),
    oidc: z
      .strictObject({
        /** Mount of Vault's OIDC auth method (auth/<mount>/config). */
        mount: kvPath('an auth mount path such as oidc').default('oidc'),
        /** Role used to check that Vault can still start a login (auth_url). Unset: the config's default_role. */
        role: field.nonEmpty('a role name').optional(),
        /** redirect_uri for that check. Unset: the role's first allowed_redirect_uris entry. */
        redirectUri: field.nonEmpty('a redirect URI').optional(),
      })
      .default({ mount: 'oidc' }),
    /** KV v2 mount holding both the rotation record and the Authentik API token. */
    kvMount: kvPath('a KV v2 mount such as secret').default('secret'),
    record: z
      .strictObject({
        /** KV v2 path (inside kvMount) of the rotation record. Unset: vaultkeeper/oidc-rotation/<oidc.mount>. */
        path: kvPath('a KV path such as vaultkeeper/oidc-rotation/oidc').optional(),
        /**
         * The lease of a run's claim on the record, renewed every third of it while the run
         * lives. Unset: 3 × (one Authentik call + one Vault call, each its deadline plus one
         * request timeout), the least allowed (see leaseSeconds). Short, so that a killed run
         * blocks nothing for long; long enough that a live run's calls always end inside it.
         */
        lockTtlSeconds: field.seconds(1).optional(),
      })
      .default({}),
    churn: z
      .strictObject({
        /** Changes of the secret made outside this job within this window are counted... */
        windowSeconds: field.seconds(60).default(7 * DAY),
        /** ...and from this many on, sync warns that something keeps changing it. */
        threshold: field.int(1, 1000).default(2),
      })
      .default({ windowSeconds: 7 * DAY, threshold: 2 }),
  },
  env: {
    AUTHENTIK_URL: { path: 'authentik.url', doc: "Authentik's origin (default: from Vault's oidc_discovery_url)" },
    OIDC_ROTATION_APPLICATION: { path: 'authentik.application', doc: 'expected Authentik application slug (default: from oidc_discovery_url)' },
    OIDC_ROTATION_PROVIDER_ID: { path: 'authentik.providerId', doc: 'pin the OAuth2 provider by ID (optional)' },
    OIDC_ROTATION_CLIENT_ID: { path: 'authentik.clientId', doc: 'pin the OAuth2 provider by client_id (optional)' },
    AUTHENTIK_API_TOKEN_PATH: { path: 'authentik.apiTokenPath', doc: 'KV path of the Authentik API token (default vaultkeeper/authentik/api-token)' },
    AUTHENTIK_API_TOKEN_FIELD: { path: 'authentik.apiTokenField', doc: 'field of that KV secret (default token)' },
    AUTHENTIK_REQUEST_TIMEOUT: { path: 'authentik.requestTimeoutSeconds', doc: 'timeout of one Authentik request (default 10s)' },
    AUTHENTIK_CALL_DEADLINE: { path: 'authentik.callDeadlineSeconds', doc: 'deadline of one Authentik call with retries (default 60s)' },
    AUTHENTIK_ALLOW_INSECURE_HTTP: { path: 'authentik.allowInsecureHttp', doc: 'allow http:// to a non-loopback Authentik (default false)' },
    OIDC_ROTATION_MOUNT: { path: 'oidc.mount', doc: "mount of Vault's OIDC auth method (default oidc)" },
    OIDC_ROTATION_ROLE: { path: 'oidc.role', doc: 'role for the auth_url check (default: default_role)' },
    OIDC_ROTATION_REDIRECT_URI: { path: 'oidc.redirectUri', doc: "redirect_uri for the auth_url check (default: the role's first)" },
    OIDC_ROTATION_KV_MOUNT: { path: 'kvMount', doc: 'KV v2 mount of the record and the API token (default secret)' },
    OIDC_ROTATION_RECORD_PATH: { path: 'record.path', doc: 'KV path of the rotation record (default vaultkeeper/oidc-rotation/<mount>)' },
    OIDC_ROTATION_LOCK_TTL: { path: 'record.lockTtlSeconds', doc: "lease of a run's claim on the record, renewed while it runs (default and least: 3 x (Authentik + Vault call deadline and request timeout))" },
    OIDC_ROTATION_CHURN_WINDOW: { path: 'churn.windowSeconds', doc: 'window for counting outside changes of the secret (default 7d)' },
    OIDC_ROTATION_CHURN_THRESHOLD: { path: 'churn.threshold', doc: 'outside changes in the window that trigger a warning (default 2)' },
  },
});

export const jobConfig = mergeSpecs(vaultConfig, rotationConfig);

export type RotationConfig = z.infer<z.ZodObject<(typeof rotationConfig)['shape']>>;

export function recordPath(cfg: Pick<RotationConfig, 'record' | 'oidc'>): string {
  return cfg.record.path ?? `${KV_RECORDS.oidcRotationFolder}${cfg.oidc.mount}`;
}

type CallBounds = { callDeadlineSeconds: number; requestTimeoutSeconds: number };

/**
 * The longest one call can take: its deadline stops new attempts, but the attempt under way
 * may still run for one request timeout (the retry helper starts no attempt past the deadline,
 * and each request is bounded by its idle timeout).
 */
export function callBoundSeconds(c: CallBounds): number {
  return c.callDeadlineSeconds + c.requestTimeoutSeconds;
}

/**
 * The claim's lease. Before each change outside the record, the holder checks that more of its
 * lease is left than that call can take (RotationRecordStore.assertHeld), so the lease never
 * lapses while a live holder is inside a call. With renewals every third, at least two thirds
 * are left after a healthy renewal: 3 × (both bounds) leaves room for either call and a
 * renewal that is slow, and a shorter lease would make healthy runs stop half-way.
 */
export function leaseSeconds(cfg: { authentik: CallBounds; vault: CallBounds; record: { lockTtlSeconds?: number | undefined } }): number {
  const least = 3 * (callBoundSeconds(cfg.authentik) + callBoundSeconds(cfg.vault));
  const set = cfg.record.lockTtlSeconds;
  if (set === undefined) return least;
  if (set < least) {
    throw new ConfigError([
      {
        field: 'record.lockTtlSeconds',
        reason: `must be at least ${least}s: 3 × (authentik.callDeadlineSeconds + authentik.requestTimeoutSeconds + vault.callDeadlineSeconds + vault.requestTimeoutSeconds), so that a live run's call always ends inside its lease`,
      },
    ]);
  }
  return set;
}
