import { Gauge, Registry } from 'prom-client';
import type { Logger } from './logger.ts';
import { pushAdd, type PushgatewayDestination } from './pushgateway.ts';

export type Outcome = 'success' | 'failure' | 'skipped';
const OUTCOMES: Outcome[] = ['success', 'failure', 'skipped'];

/**
 * A batch job's metrics, pushed once at the end. Names follow Prometheus practice for batch jobs:
 * the key metric is the last time the job succeeded, set only on success; duration and outcome
 * always. The push uses POST (pushAdd), which replaces only the metrics it carries, so a failed
 * run does not erase the last success timestamp that a previous run pushed.
 */
export class JobMetrics {
  readonly registry = new Registry();
  readonly prefix: string;
  private readonly lastSuccess: Gauge;
  private readonly lastRun: Gauge;
  private readonly duration: Gauge;
  private readonly outcome: Gauge;

  constructor(readonly job: string) {
    this.prefix = `vaultkeeper_${job.replace(/-/g, '_')}_`;
    this.lastSuccess = this.gauge('last_success_timestamp_seconds', 'Unix time of the last successful run.');
    this.lastRun = this.gauge('last_run_timestamp_seconds', 'Unix time the last run ended, whatever its outcome.');
    this.duration = this.gauge('duration_seconds', 'How long the last run took.');
    this.outcome = this.gauge('last_run_outcome', 'Outcome of the last run: 1 for the outcome it had, 0 for the others.', ['outcome']);
  }

  /** A job-specific gauge, named `vaultkeeper_<job>_<name>`. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge<L>({ name: this.prefix + name, help, labelNames, registers: [this.registry] });
  }

  recordRun(outcome: Outcome, durationSeconds: number, endedAt = Date.now() / 1000): void {
    this.duration.set(durationSeconds);
    this.lastRun.set(endedAt);
    for (const o of OUTCOMES) this.outcome.set({ outcome: o }, o === outcome ? 1 : 0);
    if (outcome !== 'failure') this.lastSuccess.set(endedAt);
    else this.registry.removeSingleMetric(this.prefix + 'last_success_timestamp_seconds');
  }

  /**
   * For a read-only command (list, verify): its run is not the job's run, so the run gauges are
   * dropped from what is pushed. An unset gauge would otherwise be pushed as 0 and overwrite the
   * last real run's values (pushAdd replaces the metrics it carries).
   */
  forgetRun(): void {
    for (const name of ['last_success_timestamp_seconds', 'last_run_timestamp_seconds', 'duration_seconds', 'last_run_outcome']) {
      this.registry.removeSingleMetric(this.prefix + name);
    }
  }

  /** The group this job pushes to: by job only, no per-run instance label, so each push replaces the previous run's values. */
  get groupName(): string {
    return `vaultkeeper_${this.job.replace(/-/g, '_')}`;
  }

  /** Pushes to the Pushgateway; a failed push is a warning, never the job's outcome. */
  async push(dest: PushgatewayDestination | undefined, timeoutSeconds: number, log: Logger): Promise<boolean> {
    if (!dest) return false;
    try {
      await pushAdd(dest, await this.registry.metrics(), this.registry.contentType, timeoutSeconds * 1000);
      log.debug({ pushgateway: dest.shown }, 'metrics pushed');
      return true;
    } catch (err) {
      log.warn({ pushgateway: dest.shown, err }, 'could not push metrics to the Pushgateway');
      return false;
    }
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
