import { JobMetrics, loadConfig, mergeSpecs, commonConfig, ConfigError } from '@vaultkeeper/runtime';
import { describe, expect, it } from 'vitest';
import { failed, runCheck, type CheckResult } from '../src/check.ts';
import { jobConfig } from '../src/config.ts';
import { recordCheckMetrics } from '../src/probe-metrics.ts';
import { renderTable, verdictOf } from '../src/report-table.ts';

const results: CheckResult[] = [
  { name: 'kms-key', severity: 'critical', latencyMs: 12, status: 'fail', class: 'key-unusable', summary: 'key unusable: disabled' },
  { name: 'kms-roundtrip', severity: 'critical', latencyMs: 20, status: 'ok', summary: 'encrypt 9 ms, decrypt 8 ms' },
  { name: 'vault-nodes', severity: 'critical', latencyMs: 30, status: 'warn', summary: '3 unsealed', notes: ['versions differ'] },
  { name: 'snapshot-age', severity: 'warning', latencyMs: 40, status: 'fail', class: 'stale', summary: 'stale: newest verified snapshot is 3d old' },
  { name: 'emergency-token', severity: 'warning', latencyMs: 0, status: 'skipped', summary: 'not enabled' },
];

describe('verdict and table', () => {
  it('fails only on a critical failure; a failed warning check is a warning', () => {
    expect(verdictOf(results)).toEqual({
      ok: false,
      criticalFailures: ['kms-key: key unusable: disabled'],
      warnings: ['vault-nodes: 3 unsealed', 'snapshot-age: stale: newest verified snapshot is 3d old'],
    });
    expect(verdictOf(results.filter((r) => r.name !== 'kms-key')).ok).toBe(true);
  });

  it('renders one aligned row per check, the notes below, and the verdict', () => {
    const table = renderTable(results);
    expect(table.split('\n')).toEqual([
      'CHECK            RESULT   SEVERITY  LATENCY  DETAIL',
      'kms-key          FAIL     critical    12 ms  key unusable: disabled',
      'kms-roundtrip    ok       critical    20 ms  encrypt 9 ms, decrypt 8 ms',
      'vault-nodes      WARN     critical    30 ms  3 unsealed',
      '                 · versions differ',
      'snapshot-age     FAIL     warning     40 ms  stale: newest verified snapshot is 3d old',
      'emergency-token  skipped  warning         -  not enabled',
      '',
      'RESULT: FAILED: 1 critical check failed, 2 warning(s)',
      '',
    ]);
  });
});

describe('metrics', () => {
  it('one up series per check with its class and severity, latency, nothing for a skipped check', async () => {
    const m = new JobMetrics('kms-probe');
    recordCheckMetrics(m, [...results, { name: 'raft', severity: 'critical', latencyMs: 5, status: 'ok', summary: 'healthy', details: { failureTolerance: 1 } }]);
    const text = await m.text();
    expect(text).toContain('vaultkeeper_kms_probe_check_up{check="kms-key",class="key-unusable",severity="critical"} 0');
    expect(text).toContain('vaultkeeper_kms_probe_check_up{check="kms-roundtrip",class="none",severity="critical"} 1');
    expect(text).toContain('vaultkeeper_kms_probe_check_up{check="snapshot-age",class="stale",severity="warning"} 0');
    expect(text).toContain('vaultkeeper_kms_probe_check_latency_seconds{check="kms-key"} 0.012');
    expect(text).toContain('vaultkeeper_kms_probe_raft_failure_tolerance 1');
    expect(text).not.toContain('check="emergency-token"');
  });
});

describe('runCheck', () => {
  it('returns at the deadline even when the check ignores its signal', async () => {
    const signal = AbortSignal.timeout(100);
    const started = Date.now();
    const r = await runCheck({ name: 'kms-key', severity: 'critical', signal, classify: () => failed('other', 'x') }, () => new Promise(() => undefined));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(r).toMatchObject({ status: 'fail', class: 'unreachable', summary: 'unreachable: no answer before the run deadline' });
  });

  it('classifies a throw with the check’s own classifier', async () => {
    const r = await runCheck({ name: 'raft', severity: 'warning', signal: new AbortController().signal, classify: () => failed('denied', 'nope') }, async () => {
      throw new Error('boom');
    });
    expect(r).toMatchObject({ name: 'raft', severity: 'warning', status: 'fail', class: 'denied', summary: 'denied: nope' });
  });
});

describe('config', () => {
  const spec = mergeSpecs(commonConfig, jobConfig);
  it('runs with only VAULT_ADDR set, with the documented defaults', () => {
    const cfg = loadConfig(spec, { env: { VAULT_ADDR: 'http://127.0.0.1:18201' } });
    expect(cfg.kms).toEqual({ keyId: 'alias/vaultkeeper-unseal', callTimeoutSeconds: 5, maxAttempts: 2 });
    expect(cfg.criticalChecks).toEqual(['kms-key', 'kms-roundtrip', 'vault-nodes', 'raft']);
    expect(cfg.deadlineSeconds).toBe(45);
  });

  it('reads Vault’s own seal variables, and the KMS-specific endpoint wins over the shared one', () => {
    const cfg = loadConfig(spec, {
      env: { VAULT_ADDR: 'http://127.0.0.1:18201', VAULT_AWSKMS_SEAL_KEY_ID: 'alias/other', AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_KMS_ENDPOINT: 'http://127.0.0.1:2', KMS_PROBE_CRITICAL: 'kms-key,snapshot-age' },
    });
    expect(cfg.kms.keyId).toBe('alias/other');
    expect(cfg.kms.endpoint ?? cfg.aws.endpoint).toBe('http://127.0.0.1:2');
    expect(cfg.criticalChecks).toEqual(['kms-key', 'snapshot-age']);
  });

  it('names a check that does not exist', () => {
    expect(() => loadConfig(spec, { env: { VAULT_ADDR: 'http://127.0.0.1:18201', KMS_PROBE_CRITICAL: 'kms-kye' } })).toThrow(ConfigError);
  });
});
