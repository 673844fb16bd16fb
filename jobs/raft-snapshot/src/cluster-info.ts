import { resolveCluster, type ClusterRef } from '@vaultkeeper/records';
import { JobFailure, type Logger } from '@vaultkeeper/runtime';
import { clusterIdentity, type VaultClient } from '@vaultkeeper/vault';

export interface ClusterInfo extends Omit<ClusterRef, 'prefix'> {
  version: string;
}

/**
 * Who the cluster is: its name (for object keys, unless configured), its cluster_id (which
 * separates clusters of the same name) and its version (recorded on each object). A snapshot
 * run needs Vault's own answer: a configured snapshot.clusterId must match it, never replace it
 * (storing under an id Vault did not confirm could file the snapshot as another cluster's).
 */
export async function clusterInfo(
  vault: VaultClient,
  configured: { cluster?: string | undefined; clusterId?: string | undefined },
  log: Logger,
  signal: AbortSignal,
): Promise<ClusterInfo> {
  const identity = await clusterIdentity(vault, signal);
  const version = identity.version ?? 'unknown';
  // Without a reported id resolveCluster would fall back to the configured one: not here.
  const resolved = resolveCluster(identity, identity.id ? configured : { cluster: configured.cluster });
  if ('error' in resolved) throw new JobFailure(`${resolved.error}; nothing was done`, { check: 'cluster' });
  log.debug({ ...resolved, version, node: identity.node }, 'cluster identified');
  return { ...resolved, version };
}
