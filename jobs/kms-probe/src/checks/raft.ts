// The Raft cluster as autopilot sees it (GET sys/storage/raft/autopilot/state): healthy, failure
// tolerance, voters, leader, and every server that is failed, behind or missing, by name.
import { VaultUnreachableError, type VaultClient } from '@vaultkeeper/vault';
import { z } from '@vaultkeeper/runtime';
import { failed, failedMany, type CheckOutcome, type Problem } from '../check.ts';
import { vaultFailureOutcome } from '../classify-vault-error.ts';
import type { ProbeTarget } from '../vault-topology.ts';
import { probeNode, type NodeReport } from './vault-nodes.ts';

export const autopilotStateSchema = z.looseObject({
  healthy: z.boolean(),
  failure_tolerance: z.number(),
  leader: z.string().optional(),
  voters: z.array(z.string()).nullable().optional(),
  servers: z.record(
    z.string(),
    z.looseObject({
      id: z.string(),
      name: z.string().optional(),
      address: z.string().optional(),
      node_status: z.string().optional(),
      last_contact: z.string().optional(),
      last_index: z.number().optional(),
      healthy: z.boolean().optional(),
      status: z.string().optional(),
      version: z.string().optional(),
    }),
  ),
});
export type AutopilotState = z.infer<typeof autopilotStateSchema>;

export interface RaftCheckInput {
  client: VaultClient;
  /** False when login failed: autopilot cannot be asked, the nodes' unauthenticated endpoints can. */
  authenticated: boolean;
  /** Why login failed: the verdict when the nodes' own answers do not explain more. */
  loginFailure?: CheckOutcome;
  /** Nodes to ask when the client's own node does not answer (autopilot state is served by any unsealed node). */
  alternates: ProbeTarget[];
  callTimeoutSeconds: number;
  expectedVoters: number;
  minFailureTolerance: number;
}

export async function checkRaft(input: RaftCheckInput, signal: AbortSignal): Promise<CheckOutcome> {
  if (!input.authenticated) return judgeFromNodes(input, input.loginFailure ?? failed('other', 'not logged in'), signal);
  let state: AutopilotState;
  try {
    state = await readAutopilotState(input, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    return judgeFromNodes(input, vaultFailureOutcome(err, 'autopilot state'), signal);
  }
  return judgeRaft(state, input);
}

/**
 * Autopilot cannot be asked (no login, or no answer): a Vault without quorum is exactly that case,
 * since a login or a read on a standby waits for an active node that is never elected. What each
 * node says without a token (sys/health, sys/seal-status, sys/seal-backend-status) still tells
 * whether a leader can exist.
 */
async function judgeFromNodes(input: RaftCheckInput, why: CheckOutcome, signal: AbortSignal): Promise<CheckOutcome> {
  const probe = { client: input.client, authenticated: false, callTimeoutSeconds: input.callTimeoutSeconds };
  const reports = await Promise.all(input.alternates.map((t) => probeNode(probe, t, signal)));
  return judgeQuorum(reports, { expectedVoters: input.expectedVoters, why });
}

/**
 * The verdict on quorum from the nodes' unauthenticated answers (pure: unit-tested). It counts
 * distinct voters, not addresses:
 *   - addresses known to be the same Raft node (node id from the Raft configuration, when a token
 *     was there to read it) count once, and a node known to be a non-voter does not count;
 *   - vault.address among per-node fallbacks (`entry`) may be a Service in front of the nodes, and
 *     no unauthenticated answer says which node replied, so it is counted as a node of its own only
 *     when the other addresses do not cover the expected voters; otherwise it is an alias (noted).
 * A verdict needs every expected voter among the nodes counted: with fewer addresses
 * (vault.address alone) a node that does not answer may be up and simply not asked.
 *   - an active node answers (through any address): the nodes do not explain the failure; `why` stands.
 *   - no active node, fewer than a majority of the voters up and unsealed: no quorum (Raft cannot
 *     elect a leader until enough of them are back).
 *   - no active node, a majority up: no active node (an election in progress, or stuck).
 */
export function judgeQuorum(reports: NodeReport[], opts: { expectedVoters: number; why: CheckOutcome }): CheckOutcome {
  const notes = reports.map(describeReport);
  const why = opts.why.status === 'fail' ? opts.why.summary : undefined;
  const withWhy = (o: CheckOutcome): CheckOutcome => ({ ...o, notes: [...(o.notes ?? []), ...notes, ...(why ? [why] : [])] });
  const nodes = distinctVoters(reports, opts.expectedVoters);
  notes.push(...nodes.notes);
  const counted = nodes.counted;
  const voters = opts.expectedVoters > 0 ? opts.expectedVoters : counted.length;
  const isUp = (r: NodeReport) => !r.error && r.initialized !== false && r.sealed === false;
  const up = counted.filter(isUp);
  const active = reports.filter(isUp).filter((r) => r.healthStatus === 200);
  const details = { source: 'unauthenticated node endpoints', expectedVoters: voters, up: up.map((r) => r.name), active: active.map((r) => r.name) };
  if (active.length > 0 || counted.length < voters || voters === 0) return withWhy({ ...opts.why, details: { ...opts.why.details, ...details } });

  const states = counted.map((r) => `${r.name} ${stateOf(r)}`);
  const majority = Math.floor(voters / 2) + 1;
  if (up.length < majority) {
    return withWhy(
      failed('no-quorum', `${up.length} of ${voters} voters answer (${states.join('; ')}), ${majority} needed: no active node`, { details }),
    );
  }
  return withWhy(failed('degraded', `no active node (${states.join('; ')})`, { details }));
}

/** The reports that stand for distinct voters, and why the others do not count. */
function distinctVoters(reports: NodeReport[], expectedVoters: number): { counted: NodeReport[]; notes: string[] } {
  const notes: string[] = [];
  const byNode = new Map<string, NodeReport>();
  const counted: NodeReport[] = [];
  const rank = (r: NodeReport) => (r.error ? 0 : r.sealed === false ? 2 : 1);
  for (const r of reports) {
    if (r.voter === false) {
      notes.push(`${r.name}: not a voter, not counted for quorum`);
      continue;
    }
    if (r.nodeId === undefined) {
      counted.push(r);
      continue;
    }
    const seen = byNode.get(r.nodeId);
    if (!seen) {
      byNode.set(r.nodeId, r);
      counted.push(r);
      continue;
    }
    // The same node by two addresses: the better answer stands for it (one of them may be cut off).
    notes.push(`${r.address}: Raft node ${r.nodeId} again, counted once`);
    if (rank(r) > rank(seen)) {
      counted[counted.indexOf(seen)] = r;
      byNode.set(r.nodeId, r);
    }
  }
  const perNode = counted.filter((r) => !r.entry);
  if (perNode.length < counted.length && expectedVoters > 0 && perNode.length >= expectedVoters) {
    for (const r of counted.filter((c) => c.entry)) notes.push(`${r.name}: vault.address, not counted for quorum (it may be a Service in front of the nodes asked by their own addresses)`);
    return { counted: perNode, notes };
  }
  return { counted, notes };
}

function stateOf(r: NodeReport): string {
  if (r.error) return r.error.reason === 'no answer in time' ? 'not answering' : `unreachable (${r.error.reason})`;
  if (r.initialized === false) return 'uninitialised';
  if (r.sealed) return 'sealed';
  return r.role ?? 'unknown';
}

function describeReport(r: NodeReport): string {
  return `${r.name}: ${stateOf(r)}${r.sealBackend && r.sealBackend !== 'not offered' ? `, seal backend ${r.sealBackend}` : ''}`;
}

async function readAutopilotState(input: RaftCheckInput, signal: AbortSignal): Promise<AutopilotState> {
  const opts = () => ({
    signal: AbortSignal.any([signal, AbortSignal.timeout(input.callTimeoutSeconds * 1000)]),
    deadlineSeconds: input.callTimeoutSeconds,
  });
  try {
    return await input.client.read('sys/storage/raft/autopilot/state', autopilotStateSchema, opts());
  } catch (err) {
    if (!(err instanceof VaultUnreachableError) || signal.aborted) throw err;
    // The configured address is down (it may be the very node this probe should report): ask the others.
    for (const t of input.alternates.filter((a) => a.address !== err.node)) {
      try {
        const res = await input.client.call('sys/storage/raft/autopilot/state', { ...opts(), node: t.address });
        const parsed = z.object({ data: autopilotStateSchema }).safeParse(res.body);
        if (parsed.success) return parsed.data.data;
      } catch {
        if (signal.aborted) break;
      }
    }
    throw err;
  }
}

/** The verdict on autopilot's state (pure: unit-tested with a stopped node, a lagging node, lost voters). */
export function judgeRaft(state: AutopilotState, opts: Pick<RaftCheckInput, 'expectedVoters' | 'minFailureTolerance'>): CheckOutcome {
  const servers = Object.values(state.servers);
  const voters = state.voters ?? servers.filter((s) => s.status === 'leader' || s.status === 'voter').map((s) => s.id);
  const leader = state.leader ? state.servers[state.leader] : servers.find((s) => s.status === 'leader');
  const leaderIndex = leader?.last_index;
  const problems: Problem[] = [];
  const notes: string[] = [];

  for (const s of [...servers].sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id))) {
    // Autopilot leaves `name` empty for a server that left; the id is the Raft node id.
    const name = s.name || s.id;
    // "0s" is what autopilot reports for the leader itself and for servers it has no contact data for.
    const contact = s.last_contact && s.last_contact !== '0s' ? shortGoDuration(s.last_contact) : undefined;
    const lag = leaderIndex !== undefined && s.last_index !== undefined ? leaderIndex - s.last_index : undefined;
    notes.push(
      `${name}: ${s.status ?? '?'}, ${s.node_status ?? '?'}, ${s.healthy === false ? 'unhealthy' : 'healthy'}` +
        `${contact ? `, last contact ${contact}` : ''}${lag !== undefined ? `, index lag ${lag}` : ''}`,
    );
    if (s.node_status && s.node_status !== 'alive') {
      problems.push({ class: 'degraded', text: `${name} ${s.node_status}${contact ? ` (last contact ${contact} ago)` : ''}` });
    } else if (s.healthy === false) {
      problems.push({ class: 'degraded', text: `${name} unhealthy${lag ? ` (behind by ${lag} entries)` : ''}${contact ? `, last contact ${contact} ago` : ''}` });
    }
  }
  if (!leader) problems.push({ class: 'degraded', text: 'no leader' });
  if (!state.healthy && problems.length === 0) problems.push({ class: 'degraded', text: 'autopilot reports the cluster unhealthy' });
  if (state.failure_tolerance < opts.minFailureTolerance) {
    problems.push({ class: 'degraded', text: `failure tolerance ${state.failure_tolerance} (needs ${opts.minFailureTolerance})` });
  }
  if (opts.expectedVoters > 0 && voters.length < opts.expectedVoters) {
    problems.push({ class: 'degraded', text: `${voters.length} voters, expected ${opts.expectedVoters}` });
  }
  const warnings: string[] = [];
  if (opts.expectedVoters > 0 && voters.length > opts.expectedVoters) warnings.push(`${voters.length} voters, expected ${opts.expectedVoters}`);

  const details = {
    healthy: state.healthy,
    failureTolerance: state.failure_tolerance,
    leader: leader?.name || leader?.id,
    voters,
    servers: servers.map((s) => ({ name: s.name || s.id, status: s.status, nodeStatus: s.node_status, healthy: s.healthy, lastContact: s.last_contact, lastIndex: s.last_index })),
  };
  if (problems.length) {
    return failedMany(problems, { notes: [...notes, ...warnings], details });
  }
  return {
    status: warnings.length ? 'warn' : 'ok',
    summary: `healthy, leader ${leader?.name || leader?.id}, ${voters.length} voters, failure tolerance ${state.failure_tolerance}`,
    notes: [...notes, ...warnings],
    details,
  };
}

/** Go's time.Duration text ("2.574983978s", "966.36787ms", "1m3.2s") with at most two decimals. */
export function shortGoDuration(text: string): string {
  return text.replace(/(\d+)\.(\d+)(?=ms|s)/g, (_, int: string, frac: string) => {
    const rounded = Number(`${int}.${frac}`);
    const fixed = rounded.toFixed(int.length >= 3 ? 0 : 2);
    return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
  });
}
