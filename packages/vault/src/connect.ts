import { readFile } from 'node:fs/promises';
import { JobFailure, type Logger } from '@vaultkeeper/runtime';
import { VaultClient } from './client.ts';
import type { VaultConfig } from './config.ts';

export interface ConnectContext {
  log: Logger;
  signal?: AbortSignal;
  onCleanup(fn: () => Promise<void> | void): void;
}

/**
 * A logged-in client for a job. With Kubernetes auth it reads the projected service-account token
 * and logs in with the job's role; the token it gets is revoked at the end of the run (success,
 * failure or SIGTERM), so nightly jobs leave no live tokens behind.
 */
export async function connectVault(cfg: VaultConfig, ctx: ConnectContext): Promise<VaultClient> {
  const ca = cfg.caCert ? await readFile(cfg.caCert, 'utf8').catch(() => {
    throw new JobFailure(`cannot read vault.caCert file ${cfg.caCert}`);
  }) : undefined;
  const client = new VaultClient(cfg, ctx.log, ctx.signal, ca);
  ctx.onCleanup(() => client.close());
  const method = cfg.auth.method ?? (cfg.auth.role ? 'kubernetes' : 'token');

  if (method === 'token') {
    await client.useStaticToken(cfg.token);
    ctx.log.debug({ node: client.currentNode }, 'using a given Vault token');
    return client;
  }
  if (!cfg.auth.role) throw new JobFailure('vault.auth.role is required for Kubernetes auth (VAULT_AUTH_ROLE)');
  const jwt = (await readFile(cfg.auth.tokenPath, 'utf8').catch(() => {
    throw new JobFailure(`cannot read the service-account token at ${cfg.auth.tokenPath} (is the projected token volume mounted?)`);
  })).trim();
  const auth = await client.loginKubernetes(cfg.auth.role, jwt, cfg.auth.mount);
  ctx.onCleanup(async () => {
    try {
      if (await client.revokeOwnToken()) ctx.log.info({ accessor: auth?.accessor }, 'login token revoked');
    } catch (err) {
      ctx.log.error({ err, accessor: auth?.accessor }, 'could not revoke the login token; it expires with its TTL');
      throw err;
    }
  });
  ctx.log.info({ role: cfg.auth.role, mount: cfg.auth.mount, accessor: auth?.accessor, ttl: auth?.lease_duration }, 'logged in to Vault');
  return client;
}
