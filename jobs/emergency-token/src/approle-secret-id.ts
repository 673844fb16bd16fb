import { registerSecret, z } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { ProofFailed, type BreakGlassCredential, type CredentialIssuer, type CredentialStatus, type IssueMeta, type IssuedCredential } from './credential.ts';
import { isoTime, isUnknownAccessor } from './token-accessor.ts';

export interface AppRoleSettings {
  /** Mount of the AppRole auth method (default `approle`). */
  mount: string;
  /** Role whose login yields the 1h admin token (policies/emergency-token/approle-role-breakglass.json). */
  role: string;
  /** Requested secret-ID TTL; the role's secret_id_ttl caps it. */
  ttlSeconds: number;
}

const issued = z.looseObject({
  secret_id: z.string().min(1),
  secret_id_accessor: z.string().min(1),
  secret_id_ttl: z.number().optional(),
  secret_id_num_uses: z.number().optional(),
});

const lookup = z.looseObject({
  creation_time: z.string(),
  expiration_time: z.string(),
  secret_id_num_uses: z.number(),
  secret_id_accessor: z.string().optional(),
});

// Go's zero time: what Vault reports as the expiry of a secret ID without a TTL.
const NEVER = '0001-01-01T00:00:00Z';

/**
 * The one-shot kind: an AppRole secret ID with secret_id_num_uses=1 whose login yields a 1h admin
 * token. Logging in would spend it, so it is proven by looking up its accessor instead: present,
 * one use left, the expiry we recorded. Rotation issues a new one and destroys the old one by accessor.
 */
export class AppRoleSecretIdIssuer implements CredentialIssuer {
  readonly kind = 'approle-secret-id' as const;
  readonly mintWith: string;
  private readonly base: string;

  constructor(
    private readonly client: VaultClient,
    private readonly settings: AppRoleSettings,
  ) {
    this.base = `auth/${settings.mount}/role/${encodeURIComponent(settings.role)}`;
    this.mintWith = `${settings.mount}/${settings.role}`;
  }

  async issue(meta: IssueMeta, signal?: AbortSignal): Promise<IssuedCredential> {
    const opts = signal ? { signal } : {};
    const roleId = z.object({ role_id: z.string().min(1) }).parse(await this.client.read(`${this.base}/role-id`, undefined, opts)).role_id;
    const res = await this.client.call(`${this.base}/secret-id`, {
      method: 'POST',
      body: {
        // Secret-ID metadata is a JSON string of string values; it shows in lookups and the audit log.
        metadata: JSON.stringify({ purpose: meta.purpose, rotated_at: meta.rotatedAt, rotated_by: meta.rotatedBy, run_id: meta.runId }),
        num_uses: 1,
        ttl: `${Math.floor(this.settings.ttlSeconds)}s`,
      },
      ...opts,
    });
    const raw = (res.body as { data?: { secret_id?: unknown } } | undefined)?.data?.secret_id;
    if (typeof raw === 'string') registerSecret(raw);
    const data = issued.parse((res.body as { data?: unknown } | undefined)?.data);
    const now = Date.now();
    return {
      kind: 'approle-secret-id',
      secret: data.secret_id,
      roleId,
      accessor: data.secret_id_accessor,
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + (data.secret_id_ttl ?? this.settings.ttlSeconds) * 1000).toISOString(),
      mintWith: this.mintWith,
    };
  }

  async prove(credential: BreakGlassCredential, signal?: AbortSignal): Promise<void> {
    const found = await this.lookup(credential.accessor, signal);
    if (!found) throw new ProofFailed('the new secret ID is not known to Vault by its accessor', 'lookup');
    if (found.secret_id_num_uses !== 1) {
      throw new ProofFailed(`the new secret ID allows ${found.secret_id_num_uses || 'unlimited'} logins, not 1: set secret_id_num_uses=1 on the role`, 'num-uses');
    }
    if (found.expiration_time === NEVER) throw new ProofFailed('the new secret ID never expires: set secret_id_ttl on the role', 'ttl');
    const roleId = z.object({ role_id: z.string() }).parse(await this.client.read(`${this.base}/role-id`, undefined, signal ? { signal } : {})).role_id;
    if (roleId !== credential.roleId) throw new ProofFailed('the role ID delivered is not the role’s', 'role-id');
  }

  async status(accessor: string, signal?: AbortSignal): Promise<CredentialStatus> {
    const found = await this.lookup(accessor, signal);
    if (!found) return { alive: false };
    const expiresAt = found.expiration_time === NEVER ? isoTime(found.creation_time) : isoTime(found.expiration_time);
    // An expired secret ID can linger until Vault's tidy removes it.
    if (Date.parse(expiresAt) <= Date.now()) return { alive: false };
    return { alive: true, createdAt: isoTime(found.creation_time), expiresAt };
  }

  async revoke(accessor: string, signal?: AbortSignal): Promise<'revoked' | 'gone'> {
    if (!(await this.lookup(accessor, signal))) return 'gone';
    try {
      await this.client.write(`${this.base}/secret-id-accessor/destroy`, { secret_id_accessor: accessor }, undefined, { idempotent: true, ...(signal ? { signal } : {}) });
    } catch (err) {
      if (isGone(err)) return 'gone';
      throw err;
    }
    if (await this.lookup(accessor, signal)) throw new Error(`secret ID with accessor ${accessor} still exists after destroy`);
    return 'revoked';
  }

  private async lookup(accessor: string, signal?: AbortSignal): Promise<z.infer<typeof lookup> | undefined> {
    try {
      const data = await this.client.write(`${this.base}/secret-id-accessor/lookup`, { secret_id_accessor: accessor }, lookup.optional(), {
        idempotent: true,
        ...(signal ? { signal } : {}),
      });
      return data ?? undefined;
    } catch (err) {
      if (isGone(err)) return undefined;
      throw err;
    }
  }
}

/** How Vault/OpenBao answer for a secret-ID accessor they do not know (checked against OpenBao 2.6). */
function isGone(err: unknown): boolean {
  return isUnknownAccessor(err) || (err instanceof VaultError && (err.status === 404 || (err.status === 400 && err.errors.some((e) => /not found|no secret id|failed to find/i.test(e)))));
}
