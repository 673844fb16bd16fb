import { registerSecret, z } from '@vaultkeeper/runtime';
import { VaultResponseShapeError, type VaultClient } from '@vaultkeeper/vault';
import { ProofFailed, type BreakGlassCredential, type CredentialIssuer, type CredentialStatus, type IssueMeta, type IssuedCredential } from './credential.ts';
import { lookupTokenAccessor, revokeTokenAccessor } from './token-accessor.ts';

export interface LauncherSettings {
  /** Token role that mints the launcher (orphan, non-renewable, explicit max TTL; policies/emergency-token/token-role-breakglass-launcher.json). */
  launcherRole: string;
  /** Token role the launcher mints 1h admin tokens through (token-role-breakglass-admin.json). */
  adminRole: string;
  /** Requested TTL; the role's token_explicit_max_ttl caps it, and we record what Vault granted. */
  ttlSeconds: number;
}

const createResponse = z.looseObject({
  auth: z.looseObject({
    client_token: z.string().min(1),
    accessor: z.string().min(1),
    lease_duration: z.number(),
    renewable: z.boolean(),
    orphan: z.boolean().optional(),
  }),
});

const capabilities = z.record(z.string(), z.unknown());

/**
 * The launcher: the credential kept out of band. A token minted at rotation with a 1h TTL would be
 * dead long before anyone needed it, and a use-limited token cannot mint children (Vault: "a
 * token with a use limit cannot create child tokens"); so the stored token lives a little longer
 * than the rotation period and can do one thing, mint a 1h non-renewable admin token. Those admin
 * tokens are its children, so revoking the launcher at the next rotation ends them too.
 */
export class LauncherIssuer implements CredentialIssuer {
  readonly kind = 'launcher' as const;
  readonly mintWith: string;

  constructor(
    private readonly client: VaultClient,
    private readonly settings: LauncherSettings,
    /** A client that uses the given token (the proof must be made with the new token itself). */
    private readonly connectAs: (token: string) => Promise<VaultClient>,
  ) {
    this.mintWith = settings.adminRole;
  }

  async issue(meta: IssueMeta, signal?: AbortSignal): Promise<IssuedCredential> {
    // POST, not idempotent: the client retries it only when the request was certainly never sent,
    // so a lost answer can never leave two launchers behind.
    const res = await this.client.call(`auth/token/create/${encodeURIComponent(this.settings.launcherRole)}`, {
      method: 'POST',
      body: {
        ttl: `${Math.floor(this.settings.ttlSeconds)}s`,
        display_name: 'breakglass-launcher',
        // Token metadata shows in lookups and in the audit log: who made it, when, for what.
        meta: { purpose: meta.purpose, rotated_at: meta.rotatedAt, rotated_by: meta.rotatedBy, run_id: meta.runId },
      },
      ...(signal ? { signal } : {}),
    });
    // Scrub the token from every later log line even if the answer turns out malformed.
    const raw = (res.body as { auth?: { client_token?: unknown } } | undefined)?.auth?.client_token;
    if (typeof raw === 'string') registerSecret(raw);
    const parsed = createResponse.safeParse(res.body);
    if (!parsed.success) throw new VaultResponseShapeError('POST', `auth/token/create/${this.settings.launcherRole}`, parsed.error.issues.map((i) => i.path.join('.') || '(root)'));
    const auth = parsed.data.auth;
    // Times from our clock for now; the rotation replaces them with Vault's own (lookup by
    // accessor) once the accessor is safely recorded.
    const now = Date.now();
    return {
      kind: 'launcher',
      secret: auth.client_token,
      accessor: auth.accessor,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + auth.lease_duration * 1000).toISOString(),
      mintWith: this.settings.adminRole,
    };
  }

  /**
   * lookup-self with the new token (it authenticates, and it is the token we think it is), then
   * sys/capabilities-self on the admin role's create path (it can do the one thing it is for).
   * Neither spends anything or mints a token.
   */
  async prove(credential: BreakGlassCredential, signal?: AbortSignal): Promise<void> {
    const as = await this.connectAs(credential.secret);
    const self = await as.read('auth/token/lookup-self', undefined, signal ? { signal } : {});
    const lookup = z
      .looseObject({ accessor: z.string(), renewable: z.boolean(), orphan: z.boolean(), policies: z.array(z.string()).nullable(), ttl: z.number() })
      .safeParse(self);
    if (!lookup.success) throw new ProofFailed('lookup-self with the new launcher returned an unexpected shape', 'lookup-self');
    const l = lookup.data;
    if (l.accessor !== credential.accessor) throw new ProofFailed('lookup-self with the new launcher names another accessor', 'accessor');
    if (l.renewable) throw new ProofFailed(`the launcher is renewable: set renewable=false on token role ${this.settings.launcherRole}`, 'non-renewable');
    if (!l.orphan) throw new ProofFailed(`the launcher is not an orphan: set orphan=true on token role ${this.settings.launcherRole}`, 'orphan');
    if ((l.policies ?? []).includes('root')) throw new ProofFailed('the launcher carries the root policy', 'policies');
    if (l.ttl <= 0) throw new ProofFailed('the launcher has no TTL left', 'ttl');

    const path = `auth/token/create/${this.settings.adminRole}`;
    const caps = capabilities.parse(await as.write('sys/capabilities-self', { paths: [path] }, undefined, { idempotent: true, ...(signal ? { signal } : {}) }));
    const granted = caps[path];
    if (!Array.isArray(granted) || !granted.includes('update')) {
      throw new ProofFailed(`the launcher cannot create tokens through ${path}: check the breakglass-launcher policy`, 'capabilities');
    }
  }

  async status(accessor: string, signal?: AbortSignal): Promise<CredentialStatus> {
    const s = await lookupTokenAccessor(this.client, accessor, signal);
    return s.alive ? { alive: true, createdAt: s.createdAt, expiresAt: s.expiresAt } : { alive: false };
  }

  revoke(accessor: string, signal?: AbortSignal): Promise<'revoked' | 'gone'> {
    return revokeTokenAccessor(this.client, accessor, signal);
  }
}
