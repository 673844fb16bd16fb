// What every check produces, and the one wrapper that times it and bounds it by the run's deadline.
import { isAbortError } from '@vaultkeeper/runtime';

export const CHECK_NAMES = ['kms-key', 'kms-roundtrip', 'vault-nodes', 'raft', 'snapshot-age', 'emergency-token'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/**
 * Why a check failed, in words an operator can act on without opening the logs. The first five
 * are the KMS classes (an unseal fails for one of them); the others are the cluster's own.
 */
export const FAILURE_CLASSES = [
  'unreachable', // DNS, connect, timeout: network, endpoint or region outage
  'denied', // credentials, IAM policy, key policy or grant
  'key-unusable', // disabled, pending deletion, pending import, not found, wrong kind of key
  'throttled', // request quota exceeded
  'sealed', // a Vault node is sealed (or was never initialised)
  'no-quorum', // fewer than a majority of the Raft voters are up and unsealed: no leader can be elected
  'degraded', // cluster health: no/more than one active node, lost voters, failure tolerance, disagreement
  'stale', // another job's work is too old (snapshot) or about to expire (break-glass token)
  'other',
] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

/** How a class reads in the table and in the reason ("key unusable: disabled"). */
export const CLASS_LABEL: Record<FailureClass, string> = {
  unreachable: 'unreachable',
  denied: 'denied',
  'key-unusable': 'key unusable',
  throttled: 'throttled',
  sealed: 'sealed',
  'no-quorum': 'no quorum',
  degraded: 'degraded',
  stale: 'stale',
  other: 'other',
};

/** What a check function returns. `warn` = passed, with something the operator should know. */
export type CheckOutcome =
  | { status: 'ok' | 'warn'; summary: string; notes?: string[]; details?: Record<string, unknown> }
  | { status: 'fail'; class: FailureClass; summary: string; notes?: string[]; details?: Record<string, unknown> }
  | { status: 'skipped'; summary: string; notes?: string[]; details?: Record<string, unknown> };

export type Severity = 'critical' | 'warning';

export type CheckResult = CheckOutcome & { name: CheckName; severity: Severity; latencyMs: number };

/** A failed outcome whose summary starts with the class, the way an alert shows it. */
export function failed(cls: FailureClass, reason: string, extra: { notes?: string[]; details?: Record<string, unknown> } = {}): CheckOutcome {
  return { status: 'fail', class: cls, summary: `${CLASS_LABEL[cls]}: ${reason}`, ...extra };
}

/** The first class in this order wins when one check sees several problems. */
const CLASS_PRIORITY: FailureClass[] = ['key-unusable', 'no-quorum', 'denied', 'unreachable', 'throttled', 'sealed', 'degraded', 'stale', 'other'];

export function worstClass(classes: FailureClass[]): FailureClass {
  return CLASS_PRIORITY.find((c) => classes.includes(c)) ?? 'other';
}

export interface Problem {
  class: FailureClass;
  text: string;
}

/**
 * One failed outcome from several problems: the worst class is the check's class, and the summary
 * groups the problems by class, worst first ("unreachable: bao-3 (ECONNREFUSED); sealed: bao-2").
 */
export function failedMany(problems: Problem[], extra: { notes?: string[]; details?: Record<string, unknown> } = {}): CheckOutcome {
  const groups = CLASS_PRIORITY.flatMap((c) => {
    const texts = problems.filter((p) => p.class === c).map((p) => p.text);
    return texts.length ? [`${CLASS_LABEL[c]}: ${texts.join(', ')}`] : [];
  });
  return { status: 'fail', class: worstClass(problems.map((p) => p.class)), summary: groups.join('; '), ...extra };
}

export interface RunCheckOptions {
  name: CheckName;
  severity: Severity;
  /** Aborted at the run's deadline or on SIGTERM. */
  signal: AbortSignal;
  /** Turns an unexpected exception into an outcome (each check's own classifier). */
  classify: (err: unknown) => CheckOutcome;
}

/**
 * Runs one check: times it, converts a throw into a classified failure, and returns at the deadline
 * even if the check ignores its signal (a library that hangs must not hang the probe).
 */
export async function runCheck(opts: RunCheckOptions, fn: (signal: AbortSignal) => Promise<CheckOutcome>): Promise<CheckResult> {
  const started = performance.now();
  const done = (o: CheckOutcome): CheckResult => ({ ...o, name: opts.name, severity: opts.severity, latencyMs: Math.round(performance.now() - started) });
  if (opts.signal.aborted) return done(failed('unreachable', 'not started: the run deadline had passed'));
  let onAbort: (() => void) | undefined;
  const deadline = new Promise<CheckOutcome>((resolve) => {
    onAbort = () => resolve(timedOut(opts.signal));
    opts.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return done(
      await Promise.race([
        fn(opts.signal).catch((err: unknown) => (opts.signal.aborted && isAbortError(err) ? timedOut(opts.signal) : opts.classify(err))),
        deadline,
      ]),
    );
  } finally {
    if (onAbort) opts.signal.removeEventListener('abort', onAbort);
  }
}

function timedOut(signal: AbortSignal): CheckOutcome {
  const reason = signal.reason instanceof Error && signal.reason.name === 'TimeoutError' ? 'no answer before the run deadline' : 'stopped';
  return failed('unreachable', reason);
}
