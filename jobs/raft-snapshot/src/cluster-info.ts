import { z, type Logger } from '@vaultkeeper/runtime';
import type { VaultClient } from '@vaultkeeper/vault';
import { sanitizeCluster } from './object-name.ts';

const health = z.looseObject({ cluster_name: z.string().optional(), version: z.string().optional() });

export interface ClusterInfo {
  cluster: string;
  version: string;
}

/**
 * The cluster's name (for object keys, unless configured) and version (recorded on each object).
 * sys/health needs no token and answers on standbys too (429), sealed nodes (503) and DR/perf
 * secondaries (472/473), so any reachable node will do.
 */
export async function clusterInfo(vault: VaultClient, configured: string | undefined, log: Logger, signal: AbortSignal): Promise<ClusterInfo> {
  const res = await vault.call('sys/health', { signal, acceptStatus: [429, 472, 473, 501, 503] });
  const parsed = health.safeParse(res.body);
  const version = (parsed.success && parsed.data.version) || 'unknown';
  const reported = parsed.success ? parsed.data.cluster_name : undefined;
  if (!configured && !reported) throw new Error('Vault reports no cluster_name; set snapshot.cluster (SNAPSHOT_CLUSTER)');
  const cluster = sanitizeCluster(configured ?? reported!);
  log.debug({ cluster, version, node: res.node }, 'cluster identified');
  return { cluster, version };
}
