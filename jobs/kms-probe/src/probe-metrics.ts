// One series per check, pushed once at the end by the runtime (which adds last-success, duration
// and outcome itself). The failure class is a label, so an alert can say which class it is:
//   vaultkeeper_kms_probe_check_up{check="kms-key",class="key-unusable",severity="critical"} 0
// The Pushgateway's POST replaces every series of a metric name in the group, so a class label
// from an earlier run does not linger next to this run's.
import type { JobMetrics } from '@vaultkeeper/runtime';
import type { CheckResult } from './check.ts';

export function recordCheckMetrics(metrics: JobMetrics, results: CheckResult[]): void {
  const up = metrics.gauge('check_up', 'Whether the check passed (1) or failed (0); class is the failure class, "none" when up.', ['check', 'class', 'severity']);
  const latency = metrics.gauge('check_latency_seconds', 'How long the check took.', ['check']);
  const warn = metrics.gauge('check_warning', 'Whether the check passed with a warning (1) or not (0).', ['check']);
  for (const r of results) {
    if (r.status === 'skipped') continue;
    up.set({ check: r.name, class: r.status === 'fail' ? r.class : 'none', severity: r.severity }, r.status === 'fail' ? 0 : 1);
    latency.set({ check: r.name }, r.latencyMs / 1000);
    warn.set({ check: r.name }, r.status === 'warn' ? 1 : 0);
  }
  // The figures an operator graphs, when the run learned them.
  const figure = (name: string, help: string, value: unknown) => {
    if (typeof value === 'number' && Number.isFinite(value)) metrics.gauge(name, help).set(value);
  };
  const details = (name: string) => results.find((r) => r.name === name)?.details ?? {};
  figure('raft_failure_tolerance', 'Autopilot failure tolerance: voters that may fail before quorum is lost.', details('raft').failureTolerance);
  figure('snapshot_age_seconds', 'Age of the newest verified Raft snapshot in S3.', details('snapshot-age').ageSeconds);
  figure('emergency_token_remaining_seconds', 'Time until the break-glass launcher token expires.', details('emergency-token').remainingSeconds);
}
