import { describe, expect, it } from 'vitest';
import { ConfigError, commonConfig, loadConfig, mergeSpecs } from '@vaultkeeper/runtime';
import { ownRecordExcludes, parseMappings } from '../src/config.ts';
import { job } from '../src/job.ts';

const spec = mergeSpecs(commonConfig, job.config);
const base = { VAULT_ADDR: 'http://127.0.0.1:8200' };

function issues(env: Record<string, string>): string[] {
  try {
    loadConfig(spec, { env: { ...base, ...env } });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.field}: ${i.reason}`);
  }
}

describe('secret-sweep evidence config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(spec, { env: base }) as unknown as { vaultKv: Record<string, unknown> };
    expect(c.vaultKv).toMatchObject({ minValueLength: 8, commonValues: [], mappings: [], exclude: [] });
  });

  it('reads the evidence settings from the environment', () => {
    const c = loadConfig(spec, {
      env: { ...base, SWEEP_MIN_VALUE_LENGTH: '12', SWEEP_COMMON_VALUES: 'shop,eu-west-1', SWEEP_KV_MAPPINGS: 'shop/db=secret:apps/shop/db', SWEEP_KV_EXCLUDE: 'secret:ops/records/' },
    }) as unknown as { vaultKv: { mappings: string[] } & Record<string, unknown> };
    expect(c.vaultKv).toMatchObject({ minValueLength: 12, commonValues: ['shop', 'eu-west-1'], exclude: ['secret:ops/records/'] });
    expect(parseMappings(c.vaultKv.mappings).get('shop/db')).toEqual({ source: { mount: 'secret', prefix: 'apps/shop/db' }, logical: 'secret/apps/shop/db' });
  });

  it('names the field and the reason of a bad mapping or length, never the value', () => {
    expect(issues({ SWEEP_KV_MAPPINGS: 'db=secret:apps/db' })).toEqual([expect.stringMatching(/^vaultKv\.mappings\.0: must be <namespace>\/<name>=<mount>:<path>/)]);
    expect(issues({ SWEEP_KV_MAPPINGS: 'shop/db=secret:vaultkeeper/oidc-rotation/oidc' })).toEqual([expect.stringMatching(/^vaultKv\.mappings\.0: must not point into vaultkeeper's own records/)]);
    expect(issues({ SWEEP_MIN_VALUE_LENGTH: '0' })).toEqual(['vaultKv.minValueLength: must be at least 1']);
  });

  it("refuses a mapping into vaultkeeper's own records in any KV mount (the jobs' kvMount is configurable)", () => {
    for (const target of ['kv:vaultkeeper/oidc-rotation/oidc', 'kv:vaultkeeper/emergency-token/state', 'apps-kv:vaultkeeper/secret-sweep/backup/shop/db']) {
      expect(issues({ SWEEP_KV_MAPPINGS: `shop/db=${target}` }), target).toEqual([expect.stringMatching(/^vaultKv\.mappings\.0: must not point into vaultkeeper's own records/)]);
    }
    expect(issues({ SWEEP_KV_MAPPINGS: 'shop/db=kv:vaultkeeper-apps/db' })).toEqual([]);
  });
});

describe("secret-sweep: vaultkeeper's own records are never indexed", () => {
  it('skips the record folders of every job in every mount the sources read, plus the backup path and vaultKv.exclude', () => {
    const excludes = ownRecordExcludes({ sources: ['secret:apps/', 'kv:'], exclude: ['kv:ops/records/'] }, { mount: 'secret', path: 'ops/sweep-backups' });
    expect(excludes).toEqual(
      expect.arrayContaining([
        { mount: 'secret', prefix: 'ops/sweep-backups' },
        { mount: 'kv', prefix: 'ops/records' },
        ...['secret', 'kv'].flatMap((mount) => ['vaultkeeper/oidc-rotation', 'vaultkeeper/emergency-token', 'vaultkeeper/secret-sweep'].map((prefix) => ({ mount, prefix }))),
      ]),
    );
    expect(excludes).toHaveLength(2 + 6);
  });
});
