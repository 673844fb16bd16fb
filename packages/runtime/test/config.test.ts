import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, commonConfig, defineConfig, field, loadConfig, mergeSpecs, z } from '../src/index.ts';

const spec = mergeSpecs(
  commonConfig,
  defineConfig({
    shape: {
      vault: z.strictObject({ address: field.url(), timeoutSeconds: field.seconds(1).default(30) }),
      retention: z.strictObject({ keepLast: field.int(1).default(7), enabled: field.bool().default(true) }).default({ keepLast: 7, enabled: true }),
    },
    env: {
      VAULT_ADDR: { path: 'vault.address', doc: '' },
      VK_KEEP_LAST: { path: 'retention.keepLast', doc: '' },
      VK_ENABLED: { path: 'retention.enabled', doc: '' },
      VK_TIMEOUT: { path: 'vault.timeoutSeconds', doc: '' },
    },
  }),
);

function issuesOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('reads the environment and coerces typed fields', () => {
    const cfg = loadConfig(spec, { env: { VAULT_ADDR: 'https://vault:8200', VK_KEEP_LAST: '3', VK_ENABLED: 'false', VK_TIMEOUT: '5m' } });
    expect(cfg.vault).toEqual({ address: 'https://vault:8200', timeoutSeconds: 300 });
    expect(cfg.retention).toEqual({ keepLast: 3, enabled: false });
    expect(cfg.logLevel).toBe('info');
  });

  it('names a missing Vault address', () => {
    expect(issuesOf(() => loadConfig(spec, { env: {} }))).toContainEqual({ field: 'vault', reason: 'is required' });
    expect(issuesOf(() => loadConfig(spec, { env: { VK_TIMEOUT: '5s' } }))).toContainEqual({ field: 'vault.address', reason: 'is required' });
  });

  it('names a malformed URL and its variable, without echoing the value', () => {
    const issues = issuesOf(() => loadConfig(spec, { env: { VAULT_ADDR: 'vault:8200/not a url s3cr3t' } }));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ field: 'vault.address', source: 'VAULT_ADDR' });
    expect(issues[0]!.reason).toMatch(/absolute http\(s\) URL/);
    expect(JSON.stringify(issues)).not.toContain('s3cr3t');
  });

  it('names an unknown key in a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vk-config-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'vault:\n  address: https://vault:8200\n  adress: typo\nretention:\n  keepLast: 2\n');
    expect(issuesOf(() => loadConfig(spec, { env: {}, file }))).toEqual([{ field: 'vault.adress', reason: 'unknown key' }]);
  });

  it('names a wrong type', () => {
    const issues = issuesOf(() => loadConfig(spec, { env: { VAULT_ADDR: 'https://v', VK_KEEP_LAST: 'seven', VK_ENABLED: 'maybe' } }));
    expect(issues).toContainEqual({ field: 'retention.keepLast', source: 'VK_KEEP_LAST', reason: 'must be a whole number' });
    expect(issues).toContainEqual({ field: 'retention.enabled', source: 'VK_ENABLED', reason: 'must be true or false' });
  });

  it('rejects an unknown VAULTKEEPER_ variable (a typo would otherwise be ignored)', () => {
    expect(issuesOf(() => loadConfig(spec, { env: { VAULT_ADDR: 'https://v', VAULTKEEPER_KEEP_LSAT: '1' } }))).toEqual([
      { field: 'VAULTKEEPER_KEEP_LSAT', source: 'environment', reason: 'unknown variable' },
    ]);
  });

  it('says when the file is missing or not YAML', () => {
    expect(issuesOf(() => loadConfig(spec, { env: {}, file: '/nonexistent.yaml' }))).toEqual([
      { field: '(file)', source: '/nonexistent.yaml', reason: 'file not found' },
    ]);
  });
});

describe('metrics.pushgatewayUrl (review 12)', () => {
  it('refuses a query string or fragment, which the push would drop, naming the field and not the URL', () => {
    for (const url of ['http://gw.example:9091/?tenant=planted-tenant-qs', 'http://gw.example:9091/prefix#planted-tenant-qs']) {
      const issues = issuesOf(() => loadConfig(spec, { env: { VAULT_ADDR: 'https://vault:8200', PUSHGATEWAY_URL: url } }));
      expect(issues).toEqual([{ field: 'metrics.pushgatewayUrl', source: 'PUSHGATEWAY_URL', reason: expect.stringContaining('query string') }]);
      expect(JSON.stringify(issues)).not.toContain('planted-tenant-qs');
    }
    const ok = loadConfig(spec, { env: { VAULT_ADDR: 'https://vault:8200', PUSHGATEWAY_URL: 'http://gw.example:9091/prefix/' } });
    expect(ok.metrics.pushgatewayUrl).toBe('http://gw.example:9091/prefix/');
  });
});
