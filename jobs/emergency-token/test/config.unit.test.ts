import { describe, expect, it } from 'vitest';
import { ConfigError, commonConfig, loadConfig, mergeSpecs } from '@vaultkeeper/runtime';
import { job } from '../src/job.ts';

const spec = mergeSpecs(commonConfig, job.config);
const base = { VAULT_ADDR: 'http://127.0.0.1:8200' };

function issues(env: Record<string, string>): string[] {
  try {
    loadConfig(spec, { env });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.field}: ${i.reason}`);
  }
}

describe('emergency-token config', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(spec, { env: { ...base, BREAKGLASS_S3_BUCKET: 'b' } });
    expect(c.breakglass).toMatchObject({
      kind: 'launcher',
      launcherRole: 'breakglass-launcher',
      adminRole: 'breakglass-admin',
      ttlSeconds: 744 * 3600,
      minAgeSeconds: 27 * 86_400,
      expiryWarnSeconds: 3 * 86_400,
      cli: 'vault',
    });
    // No constant: unset, the label is the Vault cluster's own cluster_id, asked at run time.
    expect(c.breakglass.cluster).toBeUndefined();
    expect(c.state).toEqual({ mount: 'secret', path: 'vaultkeeper/emergency-token/state' });
    expect(c.sink.s3).toMatchObject({ bucket: 'b', kmsKeyId: 'alias/vaultkeeper-data', forcePathStyle: false });
  });

  it('reads durations from the environment', () => {
    const c = loadConfig(spec, { env: { ...base, BREAKGLASS_S3_BUCKET: 'b', BREAKGLASS_MIN_AGE: '20d', BREAKGLASS_EXPIRY_WARN: '36h', BREAKGLASS_TTL: '700h' } });
    expect(c.breakglass.minAgeSeconds).toBe(20 * 86_400);
    expect(c.breakglass.expiryWarnSeconds).toBe(36 * 3600);
    expect(c.breakglass.ttlSeconds).toBe(700 * 3600);
  });

  it('needs a bucket for the s3 sink, and organization and secret for the bitwarden sink', () => {
    expect(issues(base)).toEqual(['sink.s3.bucket: is required when sink.type is s3']);
    expect(issues({ ...base, BREAKGLASS_SINK: 'bitwarden' }).sort()).toEqual([
      'sink.bitwarden.organizationId: is required when sink.type is bitwarden',
      'sink.bitwarden.secretId: is required when sink.type is bitwarden',
    ]);
  });

  it('refuses plain http to a non-loopback Bitwarden endpoint, a bad kind and a bad cluster name', () => {
    const found = issues({
      ...base,
      BREAKGLASS_SINK: 'bitwarden',
      BREAKGLASS_BITWARDEN_ORGANIZATION_ID: 'o',
      BREAKGLASS_BITWARDEN_SECRET_ID: 's',
      BREAKGLASS_BITWARDEN_API_URL: 'http://bitwarden.example.com',
      BREAKGLASS_KIND: 'wrapped-token',
      BREAKGLASS_CLUSTER: 'a b',
    });
    expect(found.join('\n')).toMatch(/sink\.bitwarden\.apiUrl: must be https/);
    expect(found.join('\n')).toMatch(/breakglass\.kind/);
    expect(found.join('\n')).toMatch(/breakglass\.cluster/);
  });

  it('refuses a warning window or minimum age as long as the credential lives', () => {
    expect(issues({ ...base, BREAKGLASS_S3_BUCKET: 'b', BREAKGLASS_EXPIRY_WARN: '31d' })).toEqual(['breakglass.expiryWarnSeconds: must be shorter than breakglass.ttlSeconds']);
    expect(issues({ ...base, BREAKGLASS_S3_BUCKET: 'b', BREAKGLASS_MIN_AGE: '40d' })).toEqual(['breakglass.minAgeSeconds: must be shorter than breakglass.ttlSeconds']);
  });

  it('the local-stack config file is valid', () => {
    const c = loadConfig(spec, { env: base, file: new URL('../local-stack.yaml', import.meta.url).pathname });
    expect(c.sink.s3.bucket).toBe('vaultkeeper-breakglass');
    expect(c.breakglass.cli).toBe('bao');
  });
});
