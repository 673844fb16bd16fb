import type { Logger } from '@vaultkeeper/runtime';
import { clusterIdentity, type VaultClient } from '@vaultkeeper/vault';
import { sanitizeCluster } from './object-name.ts';

export interface ClusterInfo {
  cluster: string;
  version: string;
}

/** The cluster's name (for object keys, unless configured) and version (recorded on each object). */
export async function clusterInfo(vault: VaultClient, configured: string | undefined, log: Logger, signal: AbortSignal): Promise<ClusterInfo> {
  const identity = await clusterIdentity(vault, signal);
  const version = identity.version ?? 'unknown';
  if (!configured && !identity.name) throw new Error('Vault reports no cluster_name; set snapshot.cluster (SNAPSHOT_CLUSTER)');
  const cluster = sanitizeCluster(configured ?? identity.name!);
  log.debug({ cluster, version, node: identity.node }, 'cluster identified');
  return { cluster, version };
}
