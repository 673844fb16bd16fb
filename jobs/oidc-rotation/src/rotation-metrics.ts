import type { JobMetrics } from '@vaultkeeper/runtime';
import type { RotationRecord } from './rotation-record.ts';

/**
 * The job's own gauges, beside the runtime's last-success/duration/outcome. Alert on
 * `pending_change == 1` (a change is waiting for the next run) and on `external_changes`
 * reaching the churn threshold (something outside the job keeps changing the secret).
 */
export class RotationMetrics {
  private readonly changed;
  private readonly pending;
  private readonly age;
  private readonly external;

  constructor(metrics: JobMetrics) {
    this.changed = metrics.gauge('secret_changed', '1 when this run gave Vault a different OIDC client secret, else 0.');
    this.pending = metrics.gauge('pending_change', '1 when a rotation or sync is left pending in the rotation record for the next run to finish.');
    this.age = metrics.gauge('secret_age_seconds', 'Seconds since the client secret Vault holds was set, per the rotation record.');
    this.external = metrics.gauge('external_changes', 'Changes of the secret in Authentik made outside this job, within the churn window.');
  }

  /** From the record as the run leaves it. */
  observe(record: RotationRecord | undefined, changed: boolean, now = Date.now()): void {
    this.changed.set(changed ? 1 : 0);
    this.pending.set(record?.pending ? 1 : 0);
    if (record?.current) this.age.set(Math.max(0, (now - Date.parse(record.current.setAt)) / 1000));
    this.external.set(record?.externalChanges.length ?? 0);
  }
}
