// Which nodes to probe, and what each is called. The Raft configuration names every member but
// only by its cluster address (host:8201); sys/ha-status lists the api_address next to the
// cluster_address of every node that echoes to the active one. Joined on the cluster address,
// they give node id -> API address. A member that does not echo (stopped, sealed, partitioned) is
// absent from sys/ha-status; its API address is inferred when every echoing node maps its cluster
// address to its API address the same way (same host, fixed port offset: vault-0.vault-internal
// :8201 -> :8200 in the Helm chart), so that a sealed node is still asked and reported as sealed.
// Both endpoints need a token; without one, the configured addresses are all we have.
import { isLoopback, type VaultClient } from '@vaultkeeper/vault';
import { z } from '@vaultkeeper/runtime';

export interface ProbeTarget {
  /** Raft node id when known, else host:port. */
  name: string;
  address: string;
  /** The Raft node id this address belongs to, when the Raft configuration and sys/ha-status tell it. */
  nodeId?: string;
  /** Whether that node is a voter (Raft configuration); unknown without a token. */
  voter?: boolean;
  /**
   * vault.address among per-node fallbacks: it may be a Service in front of the nodes, so its
   * answer may come from a node that is also asked by its own address. No unauthenticated
   * endpoint names the node that answered (OpenBao 2.6 sys/health and sys/seal-status carry the
   * cluster's id and name only; sys/leader names the active node alone, and quorum is judged when
   * there is none), so the quorum verdict cannot dedupe it by identity; see judgeQuorum.
   */
  entry?: boolean;
}

export interface RaftMember {
  nodeId: string;
  /** host:port of the cluster listener, as the Raft configuration records it. */
  clusterAddress: string;
  voter: boolean;
  leader: boolean;
}

export interface Topology {
  targets: ProbeTarget[];
  source: 'configured' | 'discovered' | 'vault address';
  /** Raft members not echoing to the active node (down, sealed, partitioned) with no address to ask. */
  silentMembers: RaftMember[];
  /** Addresses not probed, and why (plain http to a remote host would carry the token in clear). */
  refused: Array<{ address: string; reason: string }>;
  raftMembers: RaftMember[] | undefined;
  notes: string[];
}

const haStatusSchema = z.object({
  nodes: z.array(
    z.looseObject({
      api_address: z.string(),
      cluster_address: z.string(),
      active_node: z.boolean().optional(),
    }),
  ),
});

const raftConfigSchema = z.object({
  config: z.object({
    servers: z.array(z.looseObject({ node_id: z.string(), address: z.string(), leader: z.boolean(), voter: z.boolean() })),
  }),
});

export interface DiscoverInput {
  client: VaultClient;
  authenticated: boolean;
  configured: string[];
  /** vault.address and vault.fallbackAddresses, the last resort. */
  vaultAddresses: string[];
  allowInsecureHttp: boolean;
  callTimeoutSeconds: number;
}

export async function discoverTopology(input: DiscoverInput, signal: AbortSignal): Promise<Topology> {
  const notes: string[] = [];
  let ha: z.infer<typeof haStatusSchema> | undefined;
  let raft: z.infer<typeof raftConfigSchema> | undefined;
  if (input.authenticated) {
    const opts = () => ({ signal: AbortSignal.any([signal, AbortSignal.timeout(input.callTimeoutSeconds * 1000)]), deadlineSeconds: input.callTimeoutSeconds });
    const [haRes, raftRes] = await Promise.allSettled([
      input.client.read('sys/ha-status', haStatusSchema, opts()),
      input.client.read('sys/storage/raft/configuration', raftConfigSchema, opts()),
    ]);
    if (haRes.status === 'fulfilled') ha = haRes.value;
    else notes.push(`sys/ha-status not readable (${shortError(haRes.reason)})`);
    if (raftRes.status === 'fulfilled') raft = raftRes.value;
    else notes.push(`sys/storage/raft/configuration not readable (${shortError(raftRes.reason)})`);
  }
  return buildTopology({ ...input, ha: ha?.nodes, raft: raft?.config.servers, notes });
}

/** The pure part: join the answers and choose the targets (unit-tested). */
export function buildTopology(input: {
  configured: string[];
  vaultAddresses: string[];
  allowInsecureHttp: boolean;
  ha: Array<{ api_address: string; cluster_address: string }> | undefined;
  raft: Array<{ node_id: string; address: string; leader: boolean; voter: boolean }> | undefined;
  notes?: string[];
}): Topology {
  const notes = [...(input.notes ?? [])];
  const raftMembers = input.raft?.map((s) => ({ nodeId: s.node_id, clusterAddress: hostPort(s.address), voter: s.voter, leader: s.leader }));
  const nameByApi = new Map<string, string>();
  const memberByApi = new Map<string, RaftMember>();
  const apiByCluster = new Map<string, string>();
  for (const n of input.ha ?? []) apiByCluster.set(hostPort(n.cluster_address), trim(n.api_address));
  const echoing = new Set(apiByCluster.keys());
  const mapping = input.ha ? inferApiMapping(input.ha) : undefined;
  const inferred: string[] = [];
  for (const m of raftMembers ?? []) {
    if (!apiByCluster.has(m.clusterAddress) && mapping) {
      const guess = mapping(m.clusterAddress);
      if (guess) {
        apiByCluster.set(m.clusterAddress, guess);
        inferred.push(guess);
      }
    }
    const api = apiByCluster.get(m.clusterAddress);
    if (api) {
      nameByApi.set(api, m.nodeId);
      memberByApi.set(api, m);
    }
  }

  let source: Topology['source'];
  let addresses: string[];
  let entry: string | undefined;
  if (input.configured.length) {
    source = 'configured';
    addresses = input.configured.map(trim);
  } else if (input.ha?.length) {
    source = 'discovered';
    addresses = [...new Set([...input.ha.map((n) => trim(n.api_address)), ...inferred])];
  } else {
    source = 'vault address';
    addresses = [...new Set(input.vaultAddresses.map(trim))];
    notes.push('node list not discoverable: probing vault.address and vault.fallbackAddresses only');
    // vault.address, unless it is also one of the fallbacks (then it is that node's own address).
    const [first, ...fallbacks] = input.vaultAddresses.map(trim);
    if (first !== undefined && fallbacks.length && !fallbacks.includes(first)) entry = first;
  }

  const refused: Topology['refused'] = [];
  const targets: ProbeTarget[] = [];
  for (const address of addresses) {
    let url: URL;
    try {
      url = new URL(address);
    } catch {
      refused.push({ address, reason: 'not a URL' });
      continue;
    }
    if (url.protocol === 'http:' && !isLoopback(address) && !input.allowInsecureHttp) {
      refused.push({ address, reason: 'plain http to a remote host would send the token unencrypted (vault.allowInsecureHttp)' });
      continue;
    }
    const member = memberByApi.get(address);
    targets.push({
      address,
      name: nameByApi.get(address) ?? url.host,
      ...(member ? { nodeId: member.nodeId, voter: member.voter } : {}),
      ...(address === entry ? { entry: true } : {}),
    });
  }
  // A member that does not echo and that no target stands for: nothing to ask, but it is exactly
  // the node an operator needs to hear about.
  const asked = new Set(targets.map((t) => t.address));
  const silentMembers =
    input.ha && raftMembers
      ? raftMembers.filter((m) => !echoing.has(m.clusterAddress) && !asked.has(apiByCluster.get(m.clusterAddress) ?? ''))
      : [];
  return { targets, source, silentMembers, refused, raftMembers, notes };
}

/**
 * The cluster-address -> API-address rule the echoing nodes follow, when they all follow the same
 * one: same host, the same scheme and the same port offset. Undefined when they disagree.
 */
export function inferApiMapping(ha: Array<{ api_address: string; cluster_address: string }>): ((clusterAddress: string) => string | undefined) | undefined {
  let rule: { protocol: string; offset: number } | undefined;
  for (const n of ha) {
    let api: URL;
    let cluster: URL;
    try {
      api = new URL(n.api_address);
      cluster = new URL(`x://${hostPort(n.cluster_address)}`);
    } catch {
      return undefined;
    }
    if (api.hostname.toLowerCase() !== cluster.hostname || !api.port || !cluster.port) return undefined;
    const offset = Number(api.port) - Number(cluster.port);
    if (rule && (rule.protocol !== api.protocol || rule.offset !== offset)) return undefined;
    rule = { protocol: api.protocol, offset };
  }
  if (!rule) return undefined;
  const { protocol, offset } = rule;
  return (clusterAddress) => {
    try {
      const c = new URL(`x://${clusterAddress}`);
      const port = Number(c.port) + offset;
      return port > 0 && port < 65_536 ? `${protocol}//${c.host.replace(/:\d+$/, '')}:${port}` : undefined;
    } catch {
      return undefined;
    }
  };
}

function trim(address: string): string {
  return address.replace(/\/+$/, '');
}

/** `https://10.0.0.1:8201` and `10.0.0.1:8201` name the same listener. */
function hostPort(address: string): string {
  const bare = address.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return bare.toLowerCase();
}

export function shortError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as Error & { status?: number; code?: string };
  if (e.name === 'VaultError' && e.status) return e.status === 403 ? 'permission denied' : `status ${e.status}`;
  if (e.name === 'VaultUnreachableError' && e.code) return e.code;
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'no answer in time';
  return e.message;
}
