import { describe, expect, it } from 'vitest';
import { decodeHelmRelease, HelmDecodeError } from '../src/helm-release.ts';
import { helmRecordField } from './helm-record.ts';

const release = {
  name: 'payments',
  namespace: 'shop',
  version: 3,
  info: { status: 'superseded' },
  chart: { metadata: { name: 'payments', version: '1.2.0' }, values: { image: { tag: 'v1' }, defaultPassword: 'chart-default-pw' } },
  config: { db: { password: 'values-password-123', port: 5432 }, short: 'admin' },
  manifest: [
    '---',
    'apiVersion: v1',
    'kind: Secret',
    'metadata:',
    '  name: payments-db',
    'data:',
    `  password: ${Buffer.from('manifest-data-pw-456').toString('base64')}`,
    'stringData:',
    '  apiKey: manifest-string-key-789',
    '---',
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    '  name: payments',
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    '        - name: app',
    '          env:',
    '            - name: TOKEN',
    '              value: inline-env-token-000',
  ].join('\n'),
  hooks: [{ name: 'migrate', manifest: 'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  x: hook-secret-value-111\n' }],
};

describe('decodeHelmRelease', () => {
  it.each([true, false])('reads the identity and every candidate string (gzip %s)', (gzip) => {
    const rel = decodeHelmRelease(helmRecordField(release, gzip), { minLength: 8, maxBytes: 1 << 20 });
    expect(rel.info).toEqual({ release: 'payments', namespace: 'shop', revision: 3, status: 'superseded', chart: 'payments-1.2.0' });
    const byWhere = new Map(rel.values.map((v) => [v.where, v.text ?? v.bytes?.toString('utf8')]));
    expect(byWhere.get('values.db.password')).toBe('values-password-123');
    expect(byWhere.get('chart default values.defaultPassword')).toBe('chart-default-pw');
    expect(byWhere.get('manifest Secret payments-db data.password')).toBe('manifest-data-pw-456');
    expect(byWhere.get('manifest Secret payments-db stringData.apiKey')).toBe('manifest-string-key-789');
    expect(byWhere.get('manifest Deployment payments spec.template.spec.containers[0].env[0].value')).toBe('inline-env-token-000');
    expect(byWhere.get('hook migrate Job migrate spec.x')).toBe('hook-secret-value-111');
    // Below the minimum length: not compared at all.
    expect([...byWhere.values()]).not.toContain('admin');
    expect(rel.unparsed).toEqual([]);
  });

  it('refuses a record that inflates past the limit, and one that is not a release', () => {
    const big = { ...release, config: { blob: 'x'.repeat(100_000) } };
    expect(() => decodeHelmRelease(helmRecordField(big), { minLength: 8, maxBytes: 10_000 })).toThrow(HelmDecodeError);
    expect(() => decodeHelmRelease(Buffer.from('bm90IGpzb24=').toString('base64'), { minLength: 8, maxBytes: 10_000 })).toThrow(HelmDecodeError);
  });

  it('keeps going when a manifest does not parse', () => {
    const rel = decodeHelmRelease(helmRecordField({ ...release, manifest: 'a: [unclosed' }), { minLength: 8, maxBytes: 1 << 20 });
    expect(rel.unparsed).toEqual(['manifest']);
    expect(rel.values.some((v) => v.where === 'values.db.password')).toBe(true);
  });
});
