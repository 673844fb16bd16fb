import { PassThrough } from 'node:stream';
import type { V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../src/fingerprint.ts';
import { CONSUMER_KINDS } from '../src/consumers.ts';
import { UsageIndex } from '../src/find-usage.ts';
import { inspectSecret, type InspectContext } from '../src/inspect-secret.ts';
import { LAST_APPLIED } from '../src/last-applied.ts';
import { ReportBuilder, writeJsonReport, writeTable, type SweepReport } from '../src/report.ts';
import { VaultIndex } from '../src/vault-index.ts';
import { helmRecordField } from './helm-record.ts';

const V = {
  user: 'svc-user-4b1e',
  pass: 'pw-77c1f0a9e2',
  other: 'never-migrated-5d2a',
  old: 'old-applied-9e9e9e',
  helm: 'helm-values-pw-123',
};
const b64 = (s: string) => Buffer.from(s).toString('base64');

function ctx(): InspectContext {
  const index = new VaultIndex(new Fingerprinter());
  index.addSecret('secret/apps/db', { username: V.user, password: V.pass, helm: V.helm, old: V.old });
  const usage = new UsageIndex();
  usage.addObject(CONSUMER_KINDS[0]!, { metadata: { namespace: 'app', name: 'api-0' }, spec: { containers: [{ name: 'api', envFrom: [{ secretRef: { name: 'used-db' } }] }] } });
  return {
    classify: { ignore: { namespaces: [], names: [], labels: [], annotation: 'vaultkeeper.io/ignore' }, injectorPodFor: () => undefined },
    usage,
    index,
    helm: { minValueLength: 8, maxReleaseBytes: 1 << 20 },
    mappings: new Map(),
  };
}

const s = (name: string, data: Record<string, string>, extra: Partial<V1Secret> = {}): V1Secret => ({
  metadata: { namespace: 'app', name, uid: `uid-${name}`, resourceVersion: '1', ...extra.metadata },
  type: extra.type ?? 'Opaque',
  data,
});

describe('inspectSecret', () => {
  it('migrated and unused: deletable, names the path', () => {
    const r = inspectSecret(s('db', { user: b64(V.user), pass: b64(V.pass) }), ctx());
    expect(r.deletable).toBe(true);
    expect(r.entry).toMatchObject({ class: 'leftover', inUse: false, vault: { status: 'migrated', path: 'secret/apps/db' } });
    expect(r.entry.advice).toMatch(/safe to delete/);
  });

  it('migrated but used: not deletable, and says the app still reads it', () => {
    const r = inspectSecret(s('used-db', { user: b64(V.user) }), ctx());
    expect(r.deletable).toBe(false);
    expect(r.entry.inUse).toBe(true);
    expect(r.entry.advice).toMatch(/still reads the old Secret/);
  });

  it('migrated but owned by something: not deletable', () => {
    const r = inspectSecret(s('owned', { user: b64(V.user) }, { metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'u' }] } }), ctx());
    expect(r.deletable).toBe(false);
  });

  it('partly migrated and not in Vault', () => {
    expect(inspectSecret(s('p', { user: b64(V.user), k: b64(V.other) }), ctx()).entry.vault).toMatchObject({ status: 'partly-migrated', missingKeys: ['k'] });
    expect(inspectSecret(s('n', { k: b64(V.other) }), ctx()).entry.vault?.status).toBe('not-in-vault');
  });

  it('a managed Secret with data in last-applied is reported with the copy, never the values', () => {
    const applied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', stringData: { 'tls.key': V.old } });
    const r = inspectSecret(
      s('web-tls', { 'tls.key': b64(V.other) }, { type: 'kubernetes.io/tls', metadata: { annotations: { 'cert-manager.io/certificate-name': 'web', [LAST_APPLIED]: applied } } }),
      ctx(),
    );
    expect(r.entry.class).toBe('managed');
    expect(r.entry.annotationCopy).toMatchObject({ stringDataKeys: ['tls.key'], differsFromData: true, vault: { status: 'migrated', path: 'secret/apps/db' } });
  });

  it('a Helm record holding a Vault value names release, revision and where', () => {
    const field = helmRecordField({ name: 'shop', namespace: 'app', version: 7, info: { status: 'deployed' }, config: { db: { password: V.helm } }, manifest: '' });
    const r = inspectInspect(field);
    expect(r.entry.helmRelease).toMatchObject({ release: 'shop', revision: 7, valuesInVault: 1, locations: [{ where: 'values.db.password', path: 'secret/apps/db', field: 'helm' }] });
  });

  it('nothing the report writes contains a value', async () => {
    const builder = await ReportBuilder.create();
    try {
      const c = ctx();
      for (const sec of [
        s('db', { user: b64(V.user), pass: b64(V.pass) }),
        s('p', { user: b64(V.user), k: b64(V.other) }),
        s('web', { a: b64(V.other) }, { metadata: { annotations: { [LAST_APPLIED]: JSON.stringify({ stringData: { a: V.old } }) } } }),
      ])
        await builder.add(inspectSecret(sec, c).entry);
      const result = await builder.finish({
        cluster: 'https://127.0.0.1:6443',
        scope: { namespaces: 'all' },
        vault: { sources: ['secret:'], secretsIndexed: 1, valuesIndexed: 4, unreadablePaths: [] },
        usage: { pods: 1, serviceAccounts: 0, objects: { Pod: 1 }, unreadable: [], absent: [] },
        remediation: { enabled: true, dryRun: true, planned: 1, deleted: 0, refused: 0, failed: 0, pending: 0 },
        failOn: ['partly-migrated', 'not-in-vault', 'annotation-copy'],
        actions: new Map([['app/db', { action: 'would-delete' as const, backupPath: 'secret/b/app/db' }]]),
      });
      const table = await collect((out) => writeTable(result, out));
      const json = await collect((out) => writeJsonReport(result, out));
      for (const v of Object.values(V)) {
        expect(table + json).not.toContain(v);
        expect(table + json).not.toContain(b64(v));
      }
      const report = JSON.parse(json) as SweepReport;
      expect(report.failOn.matched).toEqual({ 'partly-migrated': 1, 'not-in-vault': 1, 'annotation-copy': 1 });
      expect(report.totals.byClass.leftover).toBe(3);
      expect(report.secrets.map((e) => [e.name, e.action?.action])).toEqual([
        ['db', 'would-delete'],
        ['p', undefined],
        ['web', undefined],
      ]);
      expect(table).toMatch(/app\/db\s+leftover\s+migrated\s+secret\/apps\/db\s+no\s+in Vault at secret\/apps\/db and unused.*; would-delete/);
      expect(table).toContain('Remediation (dry run): 1 would be deleted');
    } finally {
      await builder.dispose();
    }
  });

  it('an empty report is still valid JSON', async () => {
    const builder = await ReportBuilder.create();
    const result = await builder.finish({
      cluster: 'x',
      scope: { namespaces: ['a'] },
      vault: { sources: [], secretsIndexed: 0, valuesIndexed: 0, unreadablePaths: [] },
      usage: { pods: 0, serviceAccounts: 0, objects: {}, unreadable: [], absent: [] },
      remediation: { enabled: false, dryRun: false, planned: 0, deleted: 0, refused: 0, failed: 0, pending: 0 },
      failOn: [],
      actions: new Map(),
    });
    expect((JSON.parse(await collect((out) => writeJsonReport(result, out))) as SweepReport).secrets).toEqual([]);
    expect(await collect((out) => writeTable(result, out))).toContain('No leftover plaintext Secrets.');
    await builder.dispose();
  });
});

async function collect(write: (out: NodeJS.WritableStream) => Promise<void>): Promise<string> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await write(out);
  return Buffer.concat(chunks).toString('utf8');
}

function inspectInspect(field: string) {
  return inspectSecret(s('sh.helm.release.v1.shop.v7', { release: field }, { type: 'helm.sh/release.v1' }), ctx());
}
