import { z } from 'zod';
import type { VaultClient } from './client.ts';

const health = z.looseObject({
  initialized: z.boolean().optional(),
  sealed: z.boolean().optional(),
  cluster_name: z.string().optional(),
  cluster_id: z.string().optional(),
  version: z.string().optional(),
});

/**
 * sys/health's answers that are not errors: 429 standby, 472 DR secondary, 473 performance
 * standby, 474 standby that lost the active node, 501 not initialised, 503 sealed, 530 removed
 * from the Raft cluster (Vault's documented codes; OpenBao keeps them).
 */
const HEALTH_STATUSES = [429, 472, 473, 474, 501, 503, 530];

export interface ClusterIdentity {
  /** `cluster_name` as the cluster reports it (operators may rename it; not unique across clusters). */
  name: string | undefined;
  /** `cluster_id`: a UUID made when the cluster was initialised, the same on every node; survives renames. */
  id: string | undefined;
  version: string | undefined;
  /** The node that answered (the last one asked when none reported a cluster_id). */
  node: string;
  /** As that node reported it. */
  sealed: boolean | undefined;
  initialized: boolean | undefined;
}

/**
 * Who this Vault cluster is, as every job that keeps per-cluster state (snapshots, envelopes,
 * records) must agree on it. sys/health needs no token and answers on standbys (429), sealed
 * nodes (503) and DR/performance secondaries (472/473) too. A node that is sealed reports no
 * cluster_id (OpenBao 2.6.2 leaves cluster_id and cluster_name out while sealed, initialised or
 * not; sys/seal-status has no cluster_id either), so every configured node is asked in turn until
 * one does: an address that is a Service may reach a sealed pod. None did: callers decide what
 * that means (`sealed`/`initialized` say why).
 */
export async function clusterIdentity(vault: VaultClient, signal?: AbortSignal): Promise<ClusterIdentity> {
  const nodes = vault.nodes.length > 1 ? vault.nodes : [undefined];
  let last: ClusterIdentity | undefined;
  let lastError: unknown;
  for (const node of nodes) {
    try {
      // One node at a time, each given a second chance only: the next node is the better retry.
      const res = await vault.call('sys/health', { signal, acceptStatus: HEALTH_STATUSES, ...(node ? { node, maxAttempts: 2 } : {}) });
      const parsed = health.safeParse(res.body);
      const b = parsed.success ? parsed.data : {};
      last = { name: b.cluster_name || undefined, id: b.cluster_id || undefined, version: b.version || undefined, node: res.node, sealed: b.sealed, initialized: b.initialized };
      if (last.id) return last;
    } catch (err) {
      if (signal?.aborted) throw err;
      lastError = err;
    }
  }
  if (last) return last;
  throw lastError;
}
