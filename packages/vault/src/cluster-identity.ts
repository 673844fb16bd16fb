import { z } from 'zod';
import type { VaultClient } from './client.ts';

const health = z.looseObject({
  cluster_name: z.string().optional(),
  cluster_id: z.string().optional(),
  version: z.string().optional(),
});

export interface ClusterIdentity {
  /** `cluster_name` as the cluster reports it (operators may rename it; not unique across clusters). */
  name: string | undefined;
  /** `cluster_id`: a UUID made when the cluster was initialised, the same on every node; survives renames. */
  id: string | undefined;
  version: string | undefined;
  /** The node that answered. */
  node: string;
}

/**
 * Who this Vault cluster is, as every job that keeps per-cluster state (snapshots, envelopes,
 * records) must agree on it. sys/health needs no token and answers on standbys (429), sealed
 * nodes (503) and DR/performance secondaries (472/473) too, so any reachable node will do. A
 * sealed node that was never initialised reports no cluster_id: callers decide what that means.
 */
export async function clusterIdentity(vault: VaultClient, signal?: AbortSignal): Promise<ClusterIdentity> {
  const res = await vault.call('sys/health', { signal, acceptStatus: [429, 472, 473, 501, 503] });
  const parsed = health.safeParse(res.body);
  const b = parsed.success ? parsed.data : {};
  return { name: b.cluster_name || undefined, id: b.cluster_id || undefined, version: b.version || undefined, node: res.node };
}
