// Every node, one by one: is it unsealed through the expected seal, what role does it play, do
// all nodes belong to the same cluster, and (Vault 1.15+) does it still reach its seal backend.
import { VaultError, VaultUnreachableError, type VaultClient } from '@vaultkeeper/vault';
import { failedMany, type CheckOutcome, type FailureClass, type Problem } from '../check.ts';
import { shortError, type ProbeTarget, type Topology } from '../vault-topology.ts';

/**
 * sys/health status codes. OpenBao answers only 200/429/501/503; Vault adds 472 (DR secondary),
 * 473 (performance standby), 474 (standby that cannot reach the active node, 1.17+) and 530 (node
 * removed from the cluster, 1.19+). See the Vault and OpenBao API docs of /sys/health.
 */
export const HEALTH_ROLE: Record<number, string> = {
  200: 'active',
  429: 'standby',
  472: 'dr secondary',
  473: 'perf standby',
  474: 'standby, cannot reach active',
  501: 'uninitialised',
  503: 'sealed',
  530: 'removed from cluster',
};
const HEALTH_ACCEPT = Object.keys(HEALTH_ROLE).map(Number).filter((c) => c !== 200);

export interface NodeReport {
  name: string;
  address: string;
  /** From the probe target: Raft node id and voter flag when known, vault.address among fallbacks (see ProbeTarget). */
  nodeId?: string;
  voter?: boolean;
  entry?: boolean;
  /** Set when the node could not be asked at all. */
  error?: { class: FailureClass; reason: string };
  healthStatus?: number;
  role?: string;
  initialized?: boolean;
  sealed?: boolean;
  sealType?: string;
  recoverySeal?: boolean;
  version?: string;
  clusterId?: string;
  clusterName?: string;
  /** healthy | unhealthy since <t> | not offered | not permitted | not checked */
  sealBackend?: string;
  sealBackendHealthy?: boolean;
}

export interface NodeProbeInput {
  client: VaultClient;
  authenticated: boolean;
  callTimeoutSeconds: number;
}

/**
 * The client's retry loop gives up once the next attempt would start after `deadlineSeconds`, so
 * a deadline this short means exactly one attempt (the signal bounds that attempt). Each call here
 * is an observation of one node: asking a node that is down again and again only delays the
 * report and adds load to a cluster that is already in trouble.
 */
const ONE_ATTEMPT_SECONDS = 0.001;

async function callNode(input: NodeProbeInput, target: ProbeTarget, path: string, signal: AbortSignal, acceptStatus: number[] = []) {
  return input.client.call(path, {
    node: target.address,
    acceptStatus,
    deadlineSeconds: ONE_ATTEMPT_SECONDS,
    signal: AbortSignal.any([signal, AbortSignal.timeout(input.callTimeoutSeconds * 1000)]),
  });
}

export async function probeNode(input: NodeProbeInput, target: ProbeTarget, signal: AbortSignal): Promise<NodeReport> {
  const report: NodeReport = {
    name: target.name,
    address: target.address,
    ...(target.nodeId !== undefined ? { nodeId: target.nodeId } : {}),
    ...(target.voter !== undefined ? { voter: target.voter } : {}),
    ...(target.entry ? { entry: true } : {}),
  };
  // All three are unauthenticated (seal-backend-status in Vault 1.15+; OpenBao has none): they
  // answer even when login did not, which is what matters on the day the cluster is half down.
  const [seal, health, backend] = await Promise.allSettled([
    callNode(input, target, 'sys/seal-status', signal),
    callNode(input, target, 'sys/health', signal, HEALTH_ACCEPT),
    callNode(input, target, 'sys/seal-backend-status', signal, [400, 403, 404, 405, 503]),
  ]);
  if (seal.status === 'rejected' && health.status === 'rejected') {
    if (signal.aborted) throw seal.reason;
    report.error = nodeError(seal.reason);
    return report;
  }
  if (seal.status === 'fulfilled') {
    const b = (seal.value.body ?? {}) as Record<string, unknown>;
    report.initialized = asBool(b.initialized);
    report.sealed = asBool(b.sealed);
    report.sealType = asString(b.type);
    report.recoverySeal = asBool(b.recovery_seal);
    report.version = asString(b.version);
    report.clusterId = asString(b.cluster_id);
    report.clusterName = asString(b.cluster_name);
  }
  if (health.status === 'fulfilled') {
    const b = (health.value.body ?? {}) as Record<string, unknown>;
    report.healthStatus = health.value.status;
    report.role = HEALTH_ROLE[health.value.status] ?? `status ${health.value.status}`;
    report.initialized ??= asBool(b.initialized);
    report.sealed ??= asBool(b.sealed);
    report.version ??= asString(b.version);
    report.clusterId ??= asString(b.cluster_id);
    report.clusterName ??= asString(b.cluster_name);
  } else {
    report.role = 'unknown';
  }
  if (backend.status === 'rejected') report.sealBackend = `unknown (${shortError(backend.reason)})`;
  else if (backend.value) {
    const { status, body } = backend.value;
    // OpenBao has no such endpoint ("unsupported path"): the feature is absent, nothing failed.
    if (status === 404 || status === 405 || status === 400) report.sealBackend = 'not offered';
    else if (status === 403) report.sealBackend = 'not permitted';
    else if (status === 503) report.sealBackend = 'not answered (node sealed)';
    else {
      const b = (body ?? {}) as Record<string, unknown>;
      const data = (typeof b.data === 'object' && b.data !== null ? b.data : b) as Record<string, unknown>;
      report.sealBackendHealthy = asBool(data.healthy);
      report.sealBackend = report.sealBackendHealthy === false ? `unhealthy since ${asString(data.unhealthy_since) ?? '?'}` : 'healthy';
    }
  }
  return report;
}

function nodeError(err: unknown): { class: FailureClass; reason: string } {
  if (err instanceof VaultUnreachableError) return { class: 'unreachable', reason: err.code };
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return { class: 'unreachable', reason: 'no answer in time' };
  if (err instanceof VaultError) return { class: err.status === 403 ? 'denied' : 'other', reason: `status ${err.status}` };
  if (err instanceof SyntaxError) return { class: 'other', reason: 'answer is not Vault JSON' };
  return { class: 'other', reason: shortError(err) };
}

export interface JudgeNodesInput {
  reports: NodeReport[];
  topology: Pick<Topology, 'silentMembers' | 'refused' | 'source' | 'notes'>;
  expectedSealType: string;
}

/** The verdict over all nodes (pure: unit-tested with sealed, missing and split clusters). */
export function judgeNodes({ reports, topology, expectedSealType }: JudgeNodesInput): CheckOutcome {
  const problems: Problem[] = [];
  const notes: string[] = [];
  for (const r of reports) {
    notes.push(describeNode(r));
    if (r.error) {
      problems.push({ class: r.error.class, text: `${r.name} (${r.error.reason})` });
      continue;
    }
    if (r.initialized === false) problems.push({ class: 'degraded', text: `${r.name} not initialised` });
    else if (r.sealed) problems.push({ class: 'sealed', text: r.name });
    if (r.sealType && r.sealType !== expectedSealType) problems.push({ class: 'other', text: `${r.name} seal type ${r.sealType}, expected ${expectedSealType}` });
    if (r.healthStatus === 474 || r.healthStatus === 530) problems.push({ class: 'degraded', text: `${r.name} ${r.role}` });
    if (r.sealBackendHealthy === false) problems.push({ class: 'degraded', text: `${r.name} seal backend ${r.sealBackend}` });
  }
  for (const m of topology.silentMembers) {
    problems.push({ class: 'unreachable', text: `${m.nodeId} (Raft member ${m.clusterAddress}, absent from sys/ha-status)` });
  }
  for (const r of topology.refused) notes.push(`${r.address} not probed: ${r.reason}`);
  notes.push(...topology.notes);

  const up = reports.filter((r) => !r.error && r.sealed === false);
  const active = up.filter((r) => r.healthStatus === 200);
  // With only vault.address (no token to discover the others) the active node may simply not be
  // among the nodes asked: no verdict on the active count from a partial view.
  const fullView = topology.source !== 'vault address';
  if (up.length && active.length === 0 && fullView) problems.push({ class: 'degraded', text: 'no active node' });
  if (active.length > 1) problems.push({ class: 'degraded', text: `${active.length} active nodes: ${active.map((r) => r.name).join(', ')}` });
  const clusters = groupBy(up.filter((r) => r.clusterId), (r) => r.clusterId!);
  if (clusters.size > 1) {
    const parts = [...clusters.entries()].map(([id, rs]) => `${rs.map((r) => r.name).join('+')} in ${id}`);
    problems.push({ class: 'degraded', text: `nodes disagree on the cluster: ${parts.join(' vs ')}` });
  }
  if (reports.length === 0) problems.push({ class: 'unreachable', text: 'no node to probe' });

  const versions = new Set(up.map((r) => r.version).filter(Boolean));
  const warnings: string[] = [];
  if (versions.size > 1) warnings.push(`versions differ: ${[...versions].join(', ')} (an upgrade in progress?)`);
  if (up.some((r) => r.recoverySeal === false) && expectedSealType !== 'shamir') warnings.push('a node reports no recovery seal');
  if (topology.refused.length) warnings.push(`${topology.refused.length} address(es) not probed`);
  if (!fullView) warnings.push('partial view: only vault.address and vault.fallbackAddresses were asked');

  const details = { nodes: reports, source: topology.source };
  if (problems.length) {
    return failedMany(problems, { notes: [...notes, ...warnings], details });
  }
  const standby = up.length - active.length;
  const first = up[0];
  const summary =
    `${up.length} unsealed (${active.length} active, ${standby} standby), ${first?.sealType ?? '?'}` +
    `${first?.clusterName ? `, ${first.clusterName}` : ''}${versions.size === 1 ? `, ${[...versions][0]}` : ''}`;
  return { status: warnings.length ? 'warn' : 'ok', summary, notes: [...notes, ...warnings], details };
}

function describeNode(r: NodeReport): string {
  const who = URL.canParse(r.address) && new URL(r.address).host === r.name ? r.address : `${r.name} ${r.address}`;
  if (r.error) return `${who}: ${r.error.reason}`;
  const state = r.initialized === false ? 'uninitialised' : r.sealed ? 'sealed' : 'unsealed';
  return [
    `${who}:`,
    r.role === state ? '' : (r.role ?? '?'),
    state,
    `seal ${r.sealType ?? '?'}${r.recoverySeal ? '+recovery' : ''}`,
    r.version ?? '',
    `seal backend ${r.sealBackend ?? '?'}`,
  ]
    .filter(Boolean)
    .join(' ');
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) m.set(key(i), [...(m.get(key(i)) ?? []), i]);
  return m;
}

const asBool = (v: unknown) => (typeof v === 'boolean' ? v : undefined);
const asString = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

export async function checkVaultNodes(input: NodeProbeInput & { expectedSealType: string; topology: Topology }, signal: AbortSignal): Promise<CheckOutcome> {
  const reports = await Promise.all(input.topology.targets.map((t) => probeNode(input, t, signal)));
  return judgeNodes({ reports, topology: input.topology, expectedSealType: input.expectedSealType });
}
