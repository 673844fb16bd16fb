import { readFile } from 'node:fs/promises';
import { JobFailure, type Logger } from '@vaultkeeper/runtime';
import { VaultClient } from './client.ts';
import type { VaultConfig } from './config.ts';

export interface ConnectContext {
  log: Logger;
  signal?: AbortSignal;
  onCleanup(fn: () => Promise<void> | void): void;
}

export interface ConnectOptions {
  /**
   * Send every later call to the active node (default true). OpenBao standbys answer reads from
   * their own, possibly lagging, copy of the data (OpenBao docs: concepts/consistency), so a job
   * that reads what it just wrote must talk to the active node. A node-by-node probe turns it off.
   */
  preferActiveNode?: boolean;
  /**
   * false: no login, no token: a client for what Vault answers without one (sys/health, the
   * cluster's identity), e.g. for a command that must work the day nobody can log in.
   */
  login?: boolean;
}

/**
 * A logged-in client for a job. With Kubernetes auth it reads the projected service-account token
 * and logs in with the job's role; the token it gets is revoked at the end of the run (success,
 * failure or SIGTERM), so nightly jobs leave no live tokens behind.
 */
export async function connectVault(cfg: VaultConfig, ctx: ConnectContext, opts: ConnectOptions = {}): Promise<VaultClient> {
  const ca = cfg.caCert ? await readFile(cfg.caCert, 'utf8').catch(() => {
    throw new JobFailure(`cannot read vault.caCert file ${cfg.caCert}`);
  }) : undefined;
  const client = new VaultClient(cfg, ctx.log, ctx.signal, ca);
  ctx.onCleanup(() => client.close());
  const method = cfg.auth.method ?? (cfg.auth.role ? 'kubernetes' : 'token');

  const toActive = async () => {
    if (opts.preferActiveNode === false) return;
    try {
      await client.findActiveNode();
    } catch (err) {
      // Not fatal: requests still work through whichever node answers; the job may just read stale data.
      ctx.log.warn({ err }, 'could not find the active Vault node; using the configured address');
    }
  };
  if (opts.login === false) return client;
  if (method === 'token') {
    await client.useStaticToken(cfg.token);
    await toActive();
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
  await toActive();
  ctx.log.info({ role: cfg.auth.role, mount: cfg.auth.mount, accessor: auth?.accessor, ttl: auth?.lease_duration, node: client.currentNode }, 'logged in to Vault');
  return client;
}
