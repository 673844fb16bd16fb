// The Raft cluster as autopilot sees it (GET sys/storage/raft/autopilot/state): healthy, failure
// tolerance, voters, leader, and every server that is failed, behind or missing, by name.
import { VaultUnreachableError, type VaultClient } from '@vaultkeeper/vault';
import { z } from '@vaultkeeper/runtime';
import { failedMany, type CheckOutcome, type Problem } from '../check.ts';
import type { ProbeTarget } from '../vault-topology.ts';

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
  /** Nodes to ask when the client's own node does not answer (autopilot state is served by any unsealed node). */
  alternates: ProbeTarget[];
  callTimeoutSeconds: number;
  expectedVoters: number;
  minFailureTolerance: number;
}

export async function checkRaft(input: RaftCheckInput, signal: AbortSignal): Promise<CheckOutcome> {
  const state = await readAutopilotState(input, signal);
  return judgeRaft(state, input);
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
