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

describe('pushgatewayDestination', () => {
  it('takes credentials out of the URL into a Basic header, keeps a base path, shows no credentials', async () => {
    const { pushgatewayDestination } = await import('../src/pushgateway.ts');
    const d = pushgatewayDestination('https://push%40er:p%3Ass-w0rd@gw.example:9091/prefix/', 'vaultkeeper_demo');
    expect(d.endpoint.href).toBe('https://gw.example:9091/prefix/metrics/job/vaultkeeper_demo');
    expect(d.authorization).toBe(`Basic ${Buffer.from('push@er:p:ss-w0rd').toString('base64')}`);
    expect(d.shown).toBe('https://gw.example:9091/prefix');
    const plain = pushgatewayDestination('http://pushgateway.monitoring:9091', 'vaultkeeper_demo');
    expect(plain).toEqual({ endpoint: new URL('http://pushgateway.monitoring:9091/metrics/job/vaultkeeper_demo'), shown: 'http://pushgateway.monitoring:9091' });
  });
});
