import { z } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import type { CredentialStatus } from './credential.ts';

/** Vault answers a lookup or revoke by an accessor that no longer exists with 400 `invalid accessor`. */
export function isUnknownAccessor(err: unknown): boolean {
  return err instanceof VaultError && err.status === 400 && err.errors.some((e) => /invalid (secret id )?accessor|failed to find accessor/i.test(e));
}

/** Vault times carry nanoseconds; we keep milliseconds, which is what JS dates hold. */
export function isoTime(value: string | number): string {
  return new Date(typeof value === 'number' ? value * 1000 : value).toISOString();
}

const tokenLookup = z.looseObject({
  accessor: z.string(),
  creation_time: z.number(),
  expire_time: z.string().nullable(),
  policies: z.array(z.string()).nullable(),
  renewable: z.boolean(),
  orphan: z.boolean(),
  meta: z.record(z.string(), z.string()).nullable().optional(),
  ttl: z.number(),
});
export type TokenLookup = z.infer<typeof tokenLookup>;

/**
 * auth/token/lookup-accessor: what Vault knows of a token from its accessor (never the token).
 * A lookup is safe to repeat, so it is marked idempotent for the client's retries.
 */
export async function lookupTokenAccessor(client: VaultClient, accessor: string, signal?: AbortSignal): Promise<CredentialStatus & { lookup?: TokenLookup }> {
  try {
    const data = await client.write('auth/token/lookup-accessor', { accessor }, tokenLookup, { idempotent: true, ...(signal ? { signal } : {}) });
    if (!data) return { alive: false };
    // A token without expire_time never expires (root-like); we report it as expiring at creation
    // + 0, which the watchdog treats as wrong rather than as fine forever.
    return { alive: true, createdAt: isoTime(data.creation_time), expiresAt: data.expire_time ? isoTime(data.expire_time) : isoTime(data.creation_time), lookup: data };
  } catch (err) {
    if (isUnknownAccessor(err)) return { alive: false };
    throw err;
  }
}

/**
 * auth/token/revoke-accessor: revokes the token and, because Vault revokes a token's children
 * with it, every 1h admin token it minted. Revoking an accessor that is already gone answers 200
 * with the warning "No token found with this accessor", so we look it up first to tell the two apart.
 */
export async function revokeTokenAccessor(client: VaultClient, accessor: string, signal?: AbortSignal): Promise<'revoked' | 'gone'> {
  const before = await lookupTokenAccessor(client, accessor, signal);
  if (!before.alive) return 'gone';
  try {
    await client.write('auth/token/revoke-accessor', { accessor }, undefined, { idempotent: true, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (isUnknownAccessor(err)) return 'gone';
    throw err;
  }
  const after = await lookupTokenAccessor(client, accessor, signal);
  if (after.alive) throw new Error(`token with accessor ${accessor} is still valid after revoke-accessor`);
  return 'revoked';
}
