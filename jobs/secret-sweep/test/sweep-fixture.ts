// The sweep's test data, shared by the stack test and the demo (`test/demo.ts`): Secrets of
// every class in their own namespaces, a real Helm release, `kubectl apply`-ed Secrets, a pod and
// a service account that use some of them, and the values OpenBao holds. Every value is random.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1Secret } from '@kubernetes/client-node';
import { kubectl, readStack } from '../../../test/stack/stack.ts';
import { adminKube, b64, cleanupAll, createNamespace, createSecrets, dropNamespace, kvPurge, kvPut, planted } from './fixtures.ts';

const run = promisify(execFile);

export interface SweepFixture {
  /** Secrets of every class, a Helm release, a pod and a service account. */
  nsA: string;
  /** One migrated Secret (the restore target) and one ignored by name (`<nsB>/keep-*`). */
  nsB: string;
  /** Five plain Secrets for the list tests. */
  nsC: string;
  /** The KV v2 folder (in mount `secret`) holding the migrated values. */
  kvBase: string;
  /** Every value the cluster or Vault holds; none may appear in any output. */
  values: Record<string, string>;
  binary: Buffer;
}

export const opaque = (ns: string, name: string, data: Record<string, string | Buffer>, meta: Partial<NonNullable<V1Secret['metadata']>> = {}, type = 'Opaque'): V1Secret => ({
  metadata: { namespace: ns, name, ...meta },
  type,
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});

export async function createSweepFixture(prefix: string): Promise<SweepFixture> {
  const { core } = adminKube();
  const nsA = `${prefix}-a`;
  const nsB = `${prefix}-b`;
  const nsC = `${prefix}-c`;
  const kvBase = `sweep-test/${prefix}/`;
  const workDir = mkdtempSync(join(tmpdir(), 'vk-sweep-fixture-'));
  const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x0a, 0x0d, 0x80, ...Buffer.from(planted('bin'))]);

  // Every value the cluster or Vault holds here; none may appear in any output.
  const V = {
    dbUser: planted('db-user'),
    dbPass: planted('db-pass'),
    apiToken: planted('api-token'),
    partIn: planted('part-in'),
    partOut: planted('part-out'),
    registry: planted('registry-auth'),
    plain: planted('plain'),
    ignored: planted('ignored'),
    helmPw: planted('helm-pw'),
    tlsKey: planted('tls-key'),
    tlsCrt: planted('tls-crt'),
    applied: planted('applied'),
    sealed: planted('sealed'),
    owned: planted('owned'),
    stale: planted('stale'),
    bMigrated: planted('b-migrated'),
    keep: planted('keep'),
    eso: planted('eso'),
    saToken: planted('sa-token'),
    binB64: binary.toString('base64'),
  };

  await createNamespace(core, nsA);
  await createNamespace(core, nsB);
  await createNamespace(core, nsC);
  await kvPut(`${kvBase}db`, { username: V.dbUser, password: V.dbPass, helm: V.helmPw });
  await kvPut(`${kvBase}api`, { token: V.apiToken });
  await kvPut(`${kvBase}partial`, { a: V.partIn });
  await kvPut(`${kvBase}misc/more`, { ignored: V.ignored, applied: V.applied, sealed: V.sealed, owned: V.owned, stale: V.stale });
  await kvPut(`${kvBase}binary`, { keystore: V.binB64 });
  await kvPut(`${kvBase}b`, { value: V.bMigrated });

  const ownerUid = '00000000-0000-0000-0000-000000000001';
  await createSecrets(core, [
    opaque(nsA, 'sa-token', { token: V.saToken }, { annotations: { 'kubernetes.io/service-account.name': 'default' } }, 'kubernetes.io/service-account-token'),
    opaque(nsA, 'sealed-db', { password: V.sealed }, { ownerReferences: [{ apiVersion: 'bitnami.com/v1alpha1', kind: 'SealedSecret', name: 'sealed-db', uid: ownerUid }] }),
    opaque(nsA, 'eso-managed', { v: V.eso }, { labels: { 'reconcile.external-secrets.io/managed': 'true' } }),
    opaque(nsA, 'agent-tls', { 'tls.key': V.eso }),
    opaque(nsA, 'db-migrated', { DB_USER: V.dbUser, DB_PASSWORD: V.dbPass }, { labels: { app: 'db' } }),
    opaque(nsA, 'bin-migrated', { 'keystore.p12': binary }),
    opaque(nsA, 'api-used', { token: V.apiToken }),
    opaque(nsA, 'partial', { a: V.partIn, b: V.partOut }),
    opaque(nsA, 'registry', { '.dockerconfigjson': JSON.stringify({ auths: { r: { auth: V.registry } } }) }, {}, 'kubernetes.io/dockerconfigjson'),
    opaque(nsA, 'plain-unused', { v: V.plain }),
    opaque(nsA, 'ignored-anno', { v: V.ignored }, { annotations: { 'vaultkeeper.io/ignore': 'true' } }),
    opaque(nsA, 'owned-migrated', { v: V.owned }, { ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'someone', uid: ownerUid }] }),
    opaque(nsA, 'stale', { v: V.stale }),
    opaque(nsB, 'b-migrated', { value: V.bMigrated }, { labels: { team: 'b' }, annotations: { note: 'restore me' } }),
    opaque(nsB, 'keep-me', { v: V.keep }),
    ...['c1', 'c2', 'c3', 'c4', 'c5'].map((n) => opaque(nsC, n, { v: n })),
  ]);

  // `kubectl apply` keeps the manifest as given (stringData in plaintext) in its annotation.
  const apply = (doc: unknown) => kubectl(['apply', '-f', '-'], { input: JSON.stringify(doc) });
  await apply({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: { namespace: nsA, name: 'web-tls', annotations: { 'cert-manager.io/certificate-name': 'web' } },
    stringData: { 'tls.crt': V.tlsCrt, 'tls.key': V.tlsKey },
  });
  await apply({ apiVersion: 'v1', kind: 'Secret', metadata: { namespace: nsA, name: 'applied-leftover' }, stringData: { password: V.applied } });

  // A real Helm release: its record keeps the values (and the rendered Secret) of every revision.
  const chart = join(workDir, 'chart');
  await run('mkdir', ['-p', join(chart, 'templates')]);
  writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: shop\nversion: 0.1.0\n');
  writeFileSync(join(chart, 'values.yaml'), 'dbPassword: ""\n');
  writeFileSync(
    join(chart, 'templates', 'secret.yaml'),
    'apiVersion: v1\nkind: Secret\nmetadata:\n  name: shop-db\ndata:\n  password: {{ .Values.dbPassword | b64enc }}\n',
  );
  await run('helm', ['install', 'shop', chart, '--namespace', nsA, '--kubeconfig', readStack().kube.kubeconfig, '--set', `dbPassword=${V.helmPw}`]);

  // Who uses what: a pod (env, and the Vault agent injector's annotation), a service account.
  await core.createNamespacedPod({
    namespace: nsA,
    body: {
      metadata: { name: 'api-0', annotations: { 'vault.hashicorp.com/agent-inject': 'true', 'vault.hashicorp.com/tls-secret': 'agent-tls' } },
      spec: {
        containers: [{ name: 'api', image: 'example.invalid/api:1', env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'api-used', key: 'token' } } }] }],
      },
    },
  });
  await core.createNamespacedServiceAccount({ namespace: nsA, body: { metadata: { name: 'builder' }, imagePullSecrets: [{ name: 'registry' }] } });

  return { nsA, nsB, nsC, kvBase, values: V, binary };
}

export async function dropSweepFixture(f: Pick<SweepFixture, 'nsA' | 'nsB' | 'nsC' | 'kvBase'>): Promise<void> {
  const { core } = adminKube();
  await cleanupAll([() => dropNamespace(core, f.nsA), () => dropNamespace(core, f.nsB), () => dropNamespace(core, f.nsC), () => kvPurge(f.kvBase)]);
}
