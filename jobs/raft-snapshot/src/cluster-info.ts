import { sanitizeCluster, sanitizeClusterId, type ClusterRef } from '@vaultkeeper/records';
import { JobFailure, type Logger } from '@vaultkeeper/runtime';
import { clusterIdentity, type VaultClient } from '@vaultkeeper/vault';

export interface ClusterInfo extends Omit<ClusterRef, 'prefix'> {
  version: string;
}

/**
 * Who the cluster is: its name (for object keys, unless configured), its cluster_id (which
 * separates clusters of the same name) and its version (recorded on each object).
 */
export async function clusterInfo(
  vault: VaultClient,
  configured: { cluster?: string | undefined; clusterId?: string | undefined },
  log: Logger,
  signal: AbortSignal,
): Promise<ClusterInfo> {
  const identity = await clusterIdentity(vault, signal);
  const version = identity.version ?? 'unknown';
  if (!configured.cluster && !identity.name) throw new JobFailure('Vault reports no cluster_name; set snapshot.cluster (SNAPSHOT_CLUSTER)', { check: 'cluster' });
  if (!identity.id) throw new JobFailure(`Vault (${identity.node}) reports no cluster_id: is it initialised and unsealed?`, { check: 'cluster' });
  const clusterId = sanitizeClusterId(identity.id);
  if (configured.clusterId && sanitizeClusterId(configured.clusterId) !== clusterId) {
    // Pointed at another cluster than the one configured: storing under either id would be wrong.
    throw new JobFailure(`snapshot.clusterId is ${configured.clusterId} but Vault at ${identity.node} is cluster ${clusterId}; nothing was done`, { check: 'cluster' });
  }
  const cluster = sanitizeCluster(configured.cluster ?? identity.name!);
  log.debug({ cluster, clusterId, version, node: identity.node }, 'cluster identified');
  return { cluster, clusterId, version };
}
