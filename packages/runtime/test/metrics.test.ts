import { describe, expect, it } from 'vitest';
import { JobMetrics } from '../src/metrics.ts';

describe('JobMetrics', () => {
  it('a read-only command pushes no run gauges (an unset gauge would push 0 over the last real run)', async () => {
    const m = new JobMetrics('demo-job');
    m.gauge('latest_object_age_seconds', 'age').set(5);
    m.forgetRun();
    const text = await m.text();
    expect(text).toContain('vaultkeeper_demo_job_latest_object_age_seconds 5');
    expect(text).not.toMatch(/last_success|last_run|duration_seconds/);
  });

  it('a recorded run carries duration, outcome and (on success) the last-success time', async () => {
    const m = new JobMetrics('demo-job');
    m.recordRun('success', 2, 1000);
    const text = await m.text();
    expect(text).toContain('vaultkeeper_demo_job_last_success_timestamp_seconds 1000');
    expect(text).toContain('vaultkeeper_demo_job_last_run_outcome{outcome="success"} 1');
  });
});
