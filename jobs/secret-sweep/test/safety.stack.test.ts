// The sweep's safety on a real cluster (issue 12, points 1 and 2), against the local stack:
// "unused" must mean that nothing Kubernetes can tell us about names the Secret (workload pod
// templates whatever their replicas, Ingress, Gateway, StorageClass, Flux, cert-manager, Argo CD),
// and "migrated" must be evidence (all values together at one KV path, no short or common
// literal as proof, never vaultkeeper's own records). Every run deletes for real
// (--delete-migrated): a Secret wrongly found deletable is gone at the end of the run.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@vaultkeeper/runtime';
import { connectVault } from '@vaultkeeper/vault';
import { stackVaultConfig } from '../../../test/support/vault-client.ts';
import { kubectl, mintServiceAccountToken } from '../../../test/stack/stack.ts';
import { connectKube } from '../src/kube.ts';
import { remediate } from '../src/remediate.ts';
import { findPlantedSecrets, runJobProcess, type JobRun } from '../../../test/support/run-job.ts';
import type { SecretEntry, SweepReport } from '../src/report.ts';
import { adminKube, cleanupAll, createNamespace, createSecrets, dropNamespace, kvPurge, kvPut, planted, sweepKubeconfig, uniquePrefix } from './fixtures.ts';
import { opaque } from './sweep-fixture.ts';

const prefix = uniquePrefix('sweepsafe');
// Consumers and evidence; its role has every rule the chart grants.
const ns = `${prefix}-a`;
// Its role lacks `list cronjobs`: nothing there may be deleted.
const nsR = `${prefix}-r`;
// Not swept: its Ingresses and Gateways name Secrets of `ns` (ingress-nginx `ns/name`
// annotations, Gateway certificateRefs with a namespace).
const nsI = `${prefix}-infra`;
// Swept by an account whose role lacks the cluster-wide `list ingresses`: nothing may be deleted.
const nsN = `${prefix}-n`;
const kvBase = `sweep-test/${prefix}/`;
// vaultkeeper's own records: never evidence, even when the sources cover them.
const ownRecords = [`vaultkeeper/oidc-rotation/sweeptest-${prefix}`, `vaultkeeper/emergency-token/sweeptest-${prefix}/state`];
const backupPath = `vaultkeeper/secret-sweep/backup/${prefix}`;
const storageClass = `${prefix}-csi`;
const { core } = adminKube();
const workDir = mkdtempSync(join(tmpdir(), 'vk-sweep-safety-'));
const cleanups: Array<() => Promise<unknown>> = [];

// Every value planted here; none may appear in any output. Short literals are not planted
// values: they are what makes a fingerprint match by chance.
const V = {
  cron: planted('cron'),
  zero: planted('zero'),
  tlsCrt: planted('tls-crt'),
  tlsKey: planted('tls-key'),
  sts: planted('sts'),
  ds: planted('ds'),
  rs: planted('rs'),
  rc: planted('rc'),
  job: planted('job'),
  sc: planted('sc'),
  scTemplated: planted('sc-templated'),
  pv: planted('pv'),
  argo: planted('argo'),
  free: planted('free'),
  pw: planted('pw'),
  s1: planted('spread-1'),
  s2: planted('spread-2'),
  own1: planted('own-oidc'),
  own2: planted('own-et'),
  refused: planted('refused'),
  late1: planted('late-1'),
  late2: planted('late-2'),
  gw: planted('gw'),
  flux: planted('flux'),
  acme: planted('acme'),
  ca: planted('ca'),
  xnsCa: planted('xns-ca'),
  xnsGw: planted('xns-gw'),
  noIngress: planted('no-ingress'),
  // Read since review 20: External Secrets stores, cert-manager Certificates, Istio Gateways,
  // Flux Kustomizations, HelmReleases, notification Providers, ImageRepositories, Gateway backend TLS.
  esoVaultToken: planted('eso-vault-token'),
  esoAwsKeys: planted('eso-aws-keys'),
  esoCa: planted('eso-ca'),
  p12Password: planted('p12-password'),
  istioCred: planted('istio-cred'),
  sopsAge: planted('sops-age'),
  hrValues: planted('hr-values'),
  slackUrl: planted('slack-url'),
  registryScan: planted('registry-scan'),
  gwClientCert: planted('gw-client-cert'),
};

let kubeconfig: string;

async function sweep(extra: Record<string, string> = {}): Promise<{ run: JobRun; report: SweepReport }> {
  const file = join(workDir, `report-${Date.now()}.json`);
  const run = await runJobProcess({
    job: 'secret-sweep',
    args: ['--delete-migrated', '--format', 'table', '--report-file', file],
    env: {
      KUBECONFIG: kubeconfig,
      SWEEP_NAMESPACES: `${ns},${nsR}`,
      SWEEP_KV_SOURCES: `secret:${kvBase},secret:vaultkeeper/`,
      SWEEP_BACKUP_PATH: backupPath,
      SWEEP_KV_MAPPINGS: `${ns}/mapped=secret:${kvBase}mapped-db`,
      ...extra,
    },
  });
  expect(findPlantedSecrets(run.all, V)).toEqual([]);
  return { run, report: JSON.parse(readFileSync(file, 'utf8')) as SweepReport };
}

function entry(report: SweepReport, namespace: string, name: string): SecretEntry {
  const e = report.secrets.find((s) => s.namespace === namespace && s.name === name);
  if (!e) throw new Error(`no report entry for ${namespace}/${name}`);
  return e;
}

async function exists(namespace: string, name: string): Promise<boolean> {
  return core.readNamespacedSecret({ namespace, name }).then(
    () => true,
    (err: { code?: number }) => {
      if (err.code === 404) return false;
      throw err;
    },
  );
}

const apply = (doc: unknown) => kubectl(['apply', '-f', '-'], { input: JSON.stringify(doc) });
const container = (extra: Record<string, unknown> = {}) => ({ name: 'app', image: 'example.invalid/app:1', ...extra });
const podTemplate = (spec: Record<string, unknown>) => ({ metadata: { labels: { app: 'x' } }, spec: { containers: [container()], ...spec } });
const usesVolume = (secretName: string) => podTemplate({ volumes: [{ name: 's', secret: { secretName } }] });

/** A minimal valid CustomResourceDefinition with the real group, version and kind. */
async function installCrd(group: string, version: string, kind: string, plural: string, scope: 'Namespaced' | 'Cluster'): Promise<void> {
  const name = `${plural}.${group}`;
  await apply({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    // Groups under k8s.io must name the API review that approved them, as the real CRDs do.
    metadata: { name, ...(group.endsWith('.k8s.io') ? { annotations: { 'api-approved.kubernetes.io': 'https://github.com/kubernetes-sigs/gateway-api/pull/1538' } } : {}) },
    spec: {
      group,
      scope,
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [{ name: version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  });
  cleanups.push(() => kubectl(['delete', 'crd', name, '--wait=false']));
  await kubectl(['wait', '--for=condition=Established', `crd/${name}`, '--timeout=60s']);
}

beforeAll(async () => {
  await createNamespace(core, ns);
  await createNamespace(core, nsR);
  await createNamespace(core, nsI);
  await createNamespace(core, nsN);
  cleanups.push(
    () => dropNamespace(core, ns),
    () => dropNamespace(core, nsR),
    () => dropNamespace(core, nsI),
    () => dropNamespace(core, nsN),
    () => kvPurge(kvBase),
    () => kvPurge(`${backupPath}/`),
    () => kubectl(['delete', 'storageclass', storageClass, '--ignore-not-found']),
    () => kubectl(['delete', 'persistentvolume', `${prefix}-pv`, '--ignore-not-found', '--wait=false']),
    ...ownRecords.map((p) => () => kvPurge(`${p.slice(0, p.lastIndexOf('/'))}/`)),
  );

  // Vault: each strong value at a path of its own; the short ones spread over unrelated paths.
  const migrated: Array<[string, Record<string, string>]> = [
    ['cron', { token: V.cron }],
    ['zero', { password: V.zero }],
    ['tls', { crt: V.tlsCrt, key: V.tlsKey }],
    ['sts', { v: V.sts }],
    ['ds', { v: V.ds }],
    ['rs', { v: V.rs }],
    ['rc', { v: V.rc }],
    ['job', { v: V.job }],
    ['sc', { v: V.sc }],
    ['sc-templated', { v: V.scTemplated }],
    ['pv', { v: V.pv }],
    ['argo', { password: V.argo }],
    ['free', { v: V.free }],
    ['db', { user: 'admin', password: V.pw }],
    ['refused', { v: V.refused }],
    ['gw', { crt: V.gw }],
    ['flux', { password: V.flux }],
    ['acme', { key: V.acme }],
    ['ca', { key: V.ca }],
    ['xns-ca', { crt: V.xnsCa }],
    ['xns-gw', { crt: V.xnsGw }],
    ['no-ingress', { v: V.noIngress }],
    ['eso-vault-token', { v: V.esoVaultToken }],
    ['eso-aws-keys', { v: V.esoAwsKeys }],
    ['eso-ca', { v: V.esoCa }],
    ['p12-password', { v: V.p12Password }],
    ['istio-cred', { v: V.istioCred }],
    ['sops-age', { v: V.sopsAge }],
    ['hr-values', { v: V.hrValues }],
    ['slack-url', { v: V.slackUrl }],
    ['registry-scan', { v: V.registryScan }],
    ['gw-client-cert', { v: V.gwClientCert }],
    // Unrelated paths that happen to hold common literals.
    ['feature-flags', { beta: 'true' }],
    ['postgres', { port: '5432' }],
    ['grafana', { adminUser: 'admin' }],
    // Two strong values, each in a different secret.
    ['p1', { a: V.s1 }],
    ['p2', { b: V.s2 }],
    // Weak values, all together: still no proof.
    ['weak-cfg', { enabled: 'true', port: '5432' }],
    // The operator's mapping: the path this Secret was moved to.
    ['mapped-db', { host: 'localhost', port: '5432' }],
  ];
  for (const [path, data] of migrated) await kvPut(`${kvBase}${path}`, data);
  await kvPut(ownRecords[0]!, { token: V.own1 });
  await kvPut(ownRecords[1]!, { launcher: V.own2 });

  await createSecrets(core, [
    opaque(ns, 'cron-only', { token: V.cron }),
    opaque(ns, 'scaled-zero', { password: V.zero }),
    opaque(ns, 'ingress-tls', { 'tls.crt': V.tlsCrt, 'tls.key': V.tlsKey }, {}, 'kubernetes.io/tls'),
    opaque(ns, 'short-values', { enabled: 'true', port: '5432', user: 'admin' }),
    opaque(ns, 'sts-used', { v: V.sts }),
    opaque(ns, 'ds-used', { v: V.ds }),
    opaque(ns, 'rs-used', { v: V.rs }),
    opaque(ns, 'rc-used', { v: V.rc }),
    opaque(ns, 'job-used', { v: V.job }),
    opaque(ns, 'csi-provisioner', { v: V.sc }),
    opaque(ns, 'data-0-stage', { v: V.scTemplated }),
    opaque(ns, 'pv-stage', { v: V.pv }),
    opaque(ns, 'argo-repo', { password: V.argo }, { labels: { 'argocd.argoproj.io/secret-type': 'repository' } }),
    opaque(ns, 'free-migrated', { v: V.free }),
    opaque(ns, 'db-creds', { user: 'admin', password: V.pw }),
    opaque(ns, 'spread', { a: V.s1, b: V.s2 }),
    opaque(ns, 'weak-together', { enabled: 'true', port: '5432' }),
    opaque(ns, 'mapped', { host: 'localhost', port: '5432' }),
    opaque(ns, 'own-records', { token: V.own1, launcher: V.own2 }),
    opaque(nsR, 'refused-scope', { v: V.refused }),
    opaque(ns, 'xns-client-ca', { 'ca.crt': V.xnsCa }),
    opaque(nsN, 'unused-migrated', { v: V.noIngress }),
  ]);

  // The consumers: none of them has a pod (the stack runs no controller-manager, like a
  // CronJob between runs or a Deployment scaled to 0).
  await apply({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { namespace: ns, name: 'nightly' }, spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: podTemplate({ restartPolicy: 'Never', containers: [container({ envFrom: [{ secretRef: { name: 'cron-only' } }] })] }) } } } });
  await apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { namespace: ns, name: 'idle' }, spec: { replicas: 0, selector: { matchLabels: { app: 'x' } }, template: usesVolume('scaled-zero') } });
  await apply({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { namespace: ns, name: 'web' }, spec: { tls: [{ hosts: ['web.example.invalid'], secretName: 'ingress-tls' }], defaultBackend: { service: { name: 'web', port: { number: 80 } } } } });
  await apply({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { namespace: ns, name: 'db' }, spec: { replicas: 0, serviceName: 'db', selector: { matchLabels: { app: 'x' } }, template: podTemplate({ containers: [container({ env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 'sts-used', key: 'v' } } }] })] }) } });
  await apply({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { namespace: ns, name: 'agent' }, spec: { selector: { matchLabels: { app: 'x' } }, template: podTemplate({ imagePullSecrets: [{ name: 'ds-used' }] }) } });
  await apply({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { namespace: ns, name: 'old-rs' }, spec: { replicas: 0, selector: { matchLabels: { app: 'x' } }, template: usesVolume('rs-used') } });
  await apply({ apiVersion: 'v1', kind: 'ReplicationController', metadata: { namespace: ns, name: 'legacy' }, spec: { replicas: 0, selector: { app: 'x' }, template: podTemplate({ volumes: [{ name: 'p', projected: { sources: [{ secret: { name: 'rc-used' } }] } }] }) } });
  await apply({ apiVersion: 'batch/v1', kind: 'Job', metadata: { namespace: ns, name: 'migrate' }, spec: { suspend: true, template: podTemplate({ restartPolicy: 'Never', volumes: [{ name: 's', secret: { secretName: 'job-used' } }] }) } });
  await apply({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: storageClass },
    provisioner: 'csi.example.invalid',
    parameters: {
      'csi.storage.k8s.io/provisioner-secret-name': 'csi-provisioner',
      'csi.storage.k8s.io/provisioner-secret-namespace': ns,
      // Resolved per volume by the external-provisioner: any PVC's name may fill it in.
      'csi.storage.k8s.io/node-stage-secret-name': '${pvc.name}-stage',
      'csi.storage.k8s.io/node-stage-secret-namespace': ns,
    },
  });

  // An Ingress outside the swept namespaces: ingress-nginx reads `<namespace>/<name>` of any namespace.
  await apply({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { namespace: nsI, name: 'edge-auth', annotations: { 'nginx.ingress.kubernetes.io/auth-tls-secret': `${ns}/xns-client-ca` } },
    spec: { defaultBackend: { service: { name: 'web', port: { number: 80 } } } },
  });

  // A provisioned volume mounts with the node-stage secret its (since deleted) StorageClass named.
  await apply({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `${prefix}-pv` },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      csi: { driver: 'csi.example.invalid', volumeHandle: 'vol-1', nodeStageSecretRef: { name: 'pv-stage', namespace: ns } },
    },
  });

  const chartKube = await sweepKubeconfig([ns], `${prefix}-sweep`, { remediation: true });
  const refusedKube = await sweepKubeconfig([nsR], `${prefix}-nocron`, { remediation: true, withoutResources: ['cronjobs'] });
  cleanups.push(chartKube.cleanup, refusedKube.cleanup);
  kubeconfig = chartKube.kubeconfig;
});

afterAll(async () => {
  await cleanupAll(cleanups.reverse());
});

describe('secret-sweep --delete-migrated on a real cluster', () => {
  let first: { run: JobRun; report: SweepReport };
  beforeAll(async () => {
    first = await sweep();
  });

  const keptAsInUse = async (namespace: string, name: string, kind: string, rule: string) => {
    expect(first.run.code, first.run.all).toBe(0);
    expect(await exists(namespace, name), `${namespace}/${name} was deleted`).toBe(true);
    const e = entry(first.report, namespace, name);
    expect(e.vault?.status).toBe('migrated');
    expect(e.inUse).toBe(true);
    expect(e.deletable).toBeUndefined();
    expect(e.usedBy?.refs.map((r) => `${r.kind}:${r.rule}`)).toContain(`${kind}:${rule}`);
  };

  it('keeps a Secret used only by a CronJob pod template (no pod between runs)', async () => {
    await keptAsInUse(ns, 'cron-only', 'CronJob', 'in-use.pod-template');
    expect(entry(first.report, ns, 'cron-only').usedBy?.refs).toContainEqual(expect.objectContaining({ kind: 'CronJob', name: 'nightly', via: 'pod template envFrom (container app)' }));
  });

  it('keeps a Secret used by a Deployment scaled to 0 replicas', async () => {
    await keptAsInUse(ns, 'scaled-zero', 'Deployment', 'in-use.pod-template');
  });

  it('keeps a TLS Secret named by an Ingress', async () => {
    await keptAsInUse(ns, 'ingress-tls', 'Ingress', 'in-use.ingress');
  });

  it('keeps a Secret whose short values happen to sit in unrelated KV paths, and says where each was seen', async () => {
    expect(first.run.code, first.run.all).toBe(0);
    expect(await exists(ns, 'short-values')).toBe(true);
    const e = entry(first.report, ns, 'short-values');
    expect(e.vault?.status).toBe('unproven');
    expect(e.deletable).toBeUndefined();
    expect(e.vault?.weakKeys?.sort()).toEqual(['enabled', 'port', 'user']);
    expect(e.vault?.found.map((f) => f.key).sort()).toEqual(['enabled', 'port', 'user']);
    expect(e.vault?.found.every((f) => f.path.startsWith(`secret/${kvBase}`))).toBe(true);
  });

  it('keeps what any workload kind names in its pod template, and what a StorageClass or a PersistentVolume names', async () => {
    await keptAsInUse(ns, 'sts-used', 'StatefulSet', 'in-use.pod-template');
    await keptAsInUse(ns, 'ds-used', 'DaemonSet', 'in-use.pod-template');
    await keptAsInUse(ns, 'rs-used', 'ReplicaSet', 'in-use.pod-template');
    await keptAsInUse(ns, 'rc-used', 'ReplicationController', 'in-use.pod-template');
    await keptAsInUse(ns, 'job-used', 'Job', 'in-use.pod-template');
    await keptAsInUse(ns, 'csi-provisioner', 'StorageClass', 'in-use.storage-class');
    // `${pvc.name}-stage` may be any PVC's: every Secret it could resolve to is kept.
    await keptAsInUse(ns, 'data-0-stage', 'StorageClass', 'in-use.storage-class');
    await keptAsInUse(ns, 'pv-stage', 'PersistentVolume', 'in-use.persistent-volume');
  });

  it('keeps a Secret of a swept namespace that an Ingress outside the swept namespaces names (namespace/name annotation)', async () => {
    await keptAsInUse(ns, 'xns-client-ca', 'Ingress', 'in-use.ingress');
    expect(entry(first.report, ns, 'xns-client-ca').usedBy?.refs).toContainEqual(
      expect.objectContaining({ kind: 'Ingress', name: `${nsI}/edge-auth`, via: 'annotation nginx.ingress.kubernetes.io/auth-tls-secret' }),
    );
  });

  it('deletes nothing in a namespaced sweep that may not list Ingresses cluster-wide (one elsewhere may name its Secrets)', async () => {
    const noIngress = await sweepKubeconfig([nsN], `${prefix}-noing`, { remediation: true, withoutResources: ['ingresses'], serviceAccount: `${prefix}-noing` });
    cleanups.push(noIngress.cleanup);
    const { run, report } = await sweep({ KUBECONFIG: noIngress.kubeconfig, SWEEP_NAMESPACES: nsN, SWEEP_KV_MAPPINGS: '' });
    expect(run.code, run.all).toBe(0);
    expect(await exists(nsN, 'unused-migrated')).toBe(true);
    const e = entry(report, nsN, 'unused-migrated');
    expect(e.vault?.status).toBe('migrated');
    expect(e.deletable).toBeUndefined();
    expect(e.usageUnknown).toEqual(['Ingress']);
    // The cluster-wide list (no namespace), not one of the swept namespace.
    expect(report.usage.unreadable).toEqual([expect.objectContaining({ kind: 'Ingress', status: 403 })]);
    expect(report.usage.unreadable[0]).not.toHaveProperty('namespace');
    expect(report.remediation).toMatchObject({ deleted: 0 });
  });

  it('keeps an Argo CD repository Secret by its label', async () => {
    await keptAsInUse(ns, 'argo-repo', 'Argo CD', 'in-use.argocd');
  });

  it('does not delete in a namespace where a consumer kind could not be listed, and says which', async () => {
    expect(first.run.code, first.run.all).toBe(0);
    expect(await exists(nsR, 'refused-scope')).toBe(true);
    const e = entry(first.report, nsR, 'refused-scope');
    expect(e.vault?.status).toBe('migrated');
    expect(e.deletable).toBeUndefined();
    expect(e.usageUnknown).toEqual(['CronJob']);
    expect(first.report.usage.unreadable).toContainEqual(expect.objectContaining({ kind: 'CronJob', namespace: nsR, status: 403 }));
    expect(first.run.summary?.usageUnreadable).toEqual([`CronJob in ${nsR}`]);
    expect(first.run.stdout).toContain(`could not list CronJob (${nsR}: 403)`);
    // Gateway API, Flux and cert-manager are not installed: fine, and said.
    expect(first.report.usage.absent).toEqual(expect.arrayContaining(['Gateway', 'GitRepository', 'Issuer', 'ClusterIssuer']));
  });

  it('migrated means every value together at one KV path, never vaultkeeper\'s own records', async () => {
    const status = (name: string) => entry(first.report, ns, name).vault?.status;
    // A weak value beside a strong one at the same path: migrated.
    expect(status('db-creds')).toBe('migrated');
    expect(entry(first.report, ns, 'db-creds').vault?.path).toBe(`secret/${kvBase}db`);
    // Two strong values in two unrelated paths: partly, and where each was seen.
    expect(status('spread')).toBe('partly-migrated');
    expect(entry(first.report, ns, 'spread').vault?.found.map((f) => `${f.key}@${f.path}`).sort()).toEqual([`a@secret/${kvBase}p1`, `b@secret/${kvBase}p2`]);
    expect(entry(first.report, ns, 'spread').advice).toMatch(new RegExp(`no one path holds them all`));
    // Weak values together at one path prove nothing.
    expect(status('weak-together')).toBe('unproven');
    // The operator mapped this one: its path holding all values is the evidence.
    expect(status('mapped')).toBe('migrated');
    expect(entry(first.report, ns, 'mapped').vault?.evidence).toBe('mapping');
    // Values only in vaultkeeper's own records are not in Vault.
    expect(status('own-records')).toBe('not-in-vault');
    expect(first.report.vault.unreadablePaths).toEqual([]);

    for (const name of ['spread', 'weak-together', 'own-records']) expect(await exists(ns, name), name).toBe(true);
    for (const name of ['db-creds', 'mapped', 'free-migrated']) expect(await exists(ns, name), name).toBe(false);
  });

  it('logs each deleted Secret by namespace/name', () => {
    const deleted = first.run.lines.filter((l) => l.msg === 'remediation: deleted').map((l) => l.secretName);
    expect(deleted.sort()).toEqual([`${ns}/db-creds`, `${ns}/free-migrated`, `${ns}/mapped`]);
    expect(first.run.all).not.toMatch(/"secret":"\[redacted\]"/);
  });

  it('re-checks every consumer kind, in the whole scope, right before deleting', async () => {
    const log = createLogger({ job: 'secret-sweep', level: 'silent' });
    const done: Array<() => unknown> = [];
    await createSecrets(core, [opaque(ns, 'late-cron', { v: V.late1 }), opaque(ns, 'late-storage', { v: V.late2 })]);
    const candidate = async (name: string) => {
      const m = (await core.readNamespacedSecret({ namespace: ns, name })).metadata!;
      return { namespace: ns, name, uid: m.uid!, resourceVersion: m.resourceVersion! };
    };
    const candidates = [await candidate('late-cron'), await candidate('late-storage')];
    // Consumers that appear after the Secrets were classified: a CronJob, and a cluster-scoped
    // StorageClass (outside any namespace the candidates are in).
    await apply({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { namespace: ns, name: 'late' }, spec: { schedule: '0 4 * * *', jobTemplate: { spec: { template: podTemplate({ restartPolicy: 'Never', volumes: [{ name: 's', secret: { secretName: 'late-cron' } }] }) } } } });
    await apply({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: `${storageClass}-late` }, provisioner: 'csi.example.invalid', parameters: { 'csi.storage.k8s.io/node-publish-secret-name': 'late-storage', 'csi.storage.k8s.io/node-publish-secret-namespace': ns } });
    cleanups.push(() => kubectl(['delete', 'storageclass', `${storageClass}-late`, '--ignore-not-found']));
    const tokenPath = join(workDir, 'vault-token');
    writeFileSync(tokenPath, await mintServiceAccountToken('vaultkeeper', 'vaultkeeper-secret-sweep', { audience: 'vault' }), { mode: 0o600 });
    const vault = await connectVault(
      stackVaultConfig({
        auth: { method: 'kubernetes', mount: 'kubernetes', role: 'vaultkeeper-secret-sweep', tokenPath },
        requestTimeoutSeconds: 30,
        callDeadlineSeconds: 60,
      }),
      { log, onCleanup: (fn) => done.push(fn) },
    );
    try {
      const kube = connectKube({ kubeconfig, requestDeadlineSeconds: 30 }, log);
      const summary = await remediate(candidates, { kube, vault, backup: { mount: 'secret', path: backupPath }, maxDeletes: 10, pageSize: 100, namespaces: [ns, nsR], dryRun: false, log });
      expect(summary).toMatchObject({ deleted: 0, refused: 2 });
      expect(summary.actions.get(`${ns}/late-cron`)?.reason).toBe('now used by CronJob late');
      expect(summary.actions.get(`${ns}/late-storage`)?.reason).toBe(`now used by StorageClass ${storageClass}-late`);
      expect(await exists(ns, 'late-cron')).toBe(true);
      expect(await exists(ns, 'late-storage')).toBe(true);
    } finally {
      for (const fn of done.reverse()) await fn();
    }
  });

  describe('with Gateway API, Flux and cert-manager installed', () => {
    let second: { run: JobRun; report: SweepReport };
    beforeAll(async () => {
      await installCrd('gateway.networking.k8s.io', 'v1', 'Gateway', 'gateways', 'Namespaced');
      await installCrd('source.toolkit.fluxcd.io', 'v1', 'GitRepository', 'gitrepositories', 'Namespaced');
      await installCrd('cert-manager.io', 'v1', 'Issuer', 'issuers', 'Namespaced');
      await installCrd('cert-manager.io', 'v1', 'ClusterIssuer', 'clusterissuers', 'Cluster');
      await installCrd('cert-manager.io', 'v1', 'Certificate', 'certificates', 'Namespaced');
      await installCrd('external-secrets.io', 'v1', 'SecretStore', 'secretstores', 'Namespaced');
      await installCrd('external-secrets.io', 'v1', 'ClusterSecretStore', 'clustersecretstores', 'Cluster');
      await installCrd('networking.istio.io', 'v1', 'Gateway', 'gateways', 'Namespaced');
      await installCrd('kustomize.toolkit.fluxcd.io', 'v1', 'Kustomization', 'kustomizations', 'Namespaced');
      await installCrd('helm.toolkit.fluxcd.io', 'v2', 'HelmRelease', 'helmreleases', 'Namespaced');
      await installCrd('notification.toolkit.fluxcd.io', 'v1beta3', 'Provider', 'providers', 'Namespaced');
      await installCrd('image.toolkit.fluxcd.io', 'v1', 'ImageRepository', 'imagerepositories', 'Namespaced');
      await createSecrets(core, [
        opaque(ns, 'gw-cert', { 'tls.crt': V.gw }, {}, 'Opaque'),
        opaque(ns, 'git-auth', { password: V.flux }),
        opaque(ns, 'acme-account', { 'tls.key': V.acme }),
        opaque(ns, 'root-ca', { 'tls.key': V.ca }),
        opaque(ns, 'xns-gw-cert', { 'tls.crt': V.xnsGw }),
        opaque(ns, 'eso-vault-token', { v: V.esoVaultToken }),
        opaque(ns, 'eso-aws-keys', { v: V.esoAwsKeys }),
        opaque(ns, 'eso-ca', { v: V.esoCa }),
        opaque(ns, 'p12-password', { v: V.p12Password }),
        opaque(ns, 'istio-cred', { v: V.istioCred }),
        opaque(ns, 'sops-age', { v: V.sopsAge }),
        opaque(ns, 'hr-values', { v: V.hrValues }),
        opaque(ns, 'slack-url', { v: V.slackUrl }),
        opaque(ns, 'registry-scan', { v: V.registryScan }),
        opaque(ns, 'gw-client-cert', { v: V.gwClientCert }),
      ]);
      await apply({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { namespace: ns, name: 'edge' },
        spec: { gatewayClassName: 'x', listeners: [{ name: 'https', port: 443, protocol: 'HTTPS', tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', group: '', name: 'gw-cert' }] } }] },
      });
      // A Gateway outside the swept namespaces, naming a Secret of `ns` (a ReferenceGrant in `ns`
      // would allow it; the sweep counts the reference with or without one).
      await apply({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { namespace: nsI, name: 'shared' },
        spec: { gatewayClassName: 'x', listeners: [{ name: 'https', port: 443, protocol: 'HTTPS', tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', group: '', namespace: ns, name: 'xns-gw-cert' }] } }] },
      });
      // Gateway API backend TLS: the client certificate the Gateway presents to backends.
      await apply({
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { namespace: ns, name: 'mtls' },
        spec: { gatewayClassName: 'x', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }], tls: { backend: { clientCertificateRef: { name: 'gw-client-cert' } } } },
      });
      await apply({ apiVersion: 'external-secrets.io/v1', kind: 'SecretStore', metadata: { namespace: ns, name: 'vault' }, spec: { provider: { vault: { server: 'https://vault.example.invalid', path: 'secret', version: 'v2', auth: { tokenSecretRef: { name: 'eso-vault-token', key: 'token' } } } } } });
      await apply({
        apiVersion: 'external-secrets.io/v1',
        kind: 'ClusterSecretStore',
        metadata: { name: `${prefix}-aws` },
        spec: {
          provider: {
            aws: { service: 'SecretsManager', region: 'eu-west-1', auth: { secretRef: { accessKeyIDSecretRef: { name: 'eso-aws-keys', key: 'id', namespace: ns } } } },
          },
        },
      });
      cleanups.push(() => kubectl(['delete', 'clustersecretstores.external-secrets.io', `${prefix}-aws`, `${prefix}-ca`, '--ignore-not-found']));
      await apply({
        apiVersion: 'external-secrets.io/v1',
        kind: 'ClusterSecretStore',
        metadata: { name: `${prefix}-ca` },
        spec: { provider: { vault: { server: 'https://vault.example.invalid', caProvider: { type: 'Secret', name: 'eso-ca', namespace: ns, key: 'ca.crt' } } } },
      });
      await apply({
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: { namespace: ns, name: 'keystore' },
        spec: { secretName: 'keystore-tls', issuerRef: { name: 'le' }, keystores: { pkcs12: { create: true, passwordSecretRef: { name: 'p12-password', key: 'password' } } } },
      });
      // Istio reads credentialName in the namespace of the gateway workload, which the Gateway's
      // selector picks: any namespace. This one lives outside the swept namespaces.
      await apply({
        apiVersion: 'networking.istio.io/v1',
        kind: 'Gateway',
        metadata: { namespace: nsI, name: 'ingress' },
        spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['*'], tls: { mode: 'SIMPLE', credentialName: 'istio-cred' } }] },
      });
      await apply({ apiVersion: 'kustomize.toolkit.fluxcd.io/v1', kind: 'Kustomization', metadata: { namespace: ns, name: 'apps' }, spec: { interval: '5m', path: './', prune: true, sourceRef: { kind: 'GitRepository', name: 'apps' }, decryption: { provider: 'sops', secretRef: { name: 'sops-age' } } } });
      await apply({ apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', metadata: { namespace: ns, name: 'shop' }, spec: { interval: '5m', chart: { spec: { chart: 'shop', sourceRef: { kind: 'HelmRepository', name: 'x' } } }, valuesFrom: [{ kind: 'Secret', name: 'hr-values' }, { kind: 'ConfigMap', name: 'eso-ca' }] } });
      await apply({ apiVersion: 'notification.toolkit.fluxcd.io/v1beta3', kind: 'Provider', metadata: { namespace: ns, name: 'slack' }, spec: { type: 'slack', secretRef: { name: 'slack-url' } } });
      await apply({ apiVersion: 'image.toolkit.fluxcd.io/v1', kind: 'ImageRepository', metadata: { namespace: ns, name: 'app' }, spec: { image: 'registry.example.invalid/app', interval: '5m', secretRef: { name: 'registry-scan' } } });
      await apply({ apiVersion: 'source.toolkit.fluxcd.io/v1', kind: 'GitRepository', metadata: { namespace: ns, name: 'apps' }, spec: { url: 'https://git.example.invalid/apps', interval: '5m', secretRef: { name: 'git-auth' } } });
      await apply({ apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { namespace: ns, name: 'le' }, spec: { acme: { server: 'https://acme.example.invalid', privateKeySecretRef: { name: 'acme-account' }, solvers: [] } } });
      await apply({ apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name: `${prefix}-ca` }, spec: { ca: { secretName: 'root-ca' } } });
      second = await sweep();
    });

    it('keeps what Gateway listeners, Flux sources and cert-manager issuers name', async () => {
      expect(second.run.code, second.run.all).toBe(0);
      const kept = async (name: string, kind: string, rule: string) => {
        expect(await exists(ns, name), `${ns}/${name} was deleted`).toBe(true);
        const e = entry(second.report, ns, name);
        expect(e.vault?.status).toBe('migrated');
        expect(e.usedBy?.refs.map((r) => `${r.kind}:${r.rule}`)).toContain(`${kind}:${rule}`);
      };
      await kept('gw-cert', 'Gateway', 'in-use.gateway');
      await kept('xns-gw-cert', 'Gateway', 'in-use.gateway');
      expect(entry(second.report, ns, 'xns-gw-cert').usedBy?.refs).toContainEqual(expect.objectContaining({ kind: 'Gateway', name: `${nsI}/shared` }));
      await kept('git-auth', 'GitRepository', 'in-use.flux-source');
      await kept('acme-account', 'Issuer', 'in-use.cert-manager-issuer');
      // A ClusterIssuer's Secret sits in cert-manager's cluster resource namespace, a
      // controller flag the job cannot see: the name is kept in every namespace.
      await kept('root-ca', 'ClusterIssuer', 'in-use.cert-manager-issuer');
      await kept('gw-client-cert', 'Gateway', 'in-use.gateway');
      await kept('eso-vault-token', 'SecretStore', 'in-use.external-secrets-store');
      await kept('eso-aws-keys', 'ClusterSecretStore', 'in-use.external-secrets-store');
      await kept('eso-ca', 'ClusterSecretStore', 'in-use.external-secrets-store');
      await kept('p12-password', 'Certificate', 'in-use.cert-manager-certificate');
      await kept('istio-cred', 'Istio Gateway', 'in-use.istio-gateway');
      await kept('sops-age', 'Kustomization', 'in-use.flux');
      await kept('hr-values', 'HelmRelease', 'in-use.flux');
      await kept('slack-url', 'Provider', 'in-use.flux');
      await kept('registry-scan', 'ImageRepository', 'in-use.flux');
      expect(second.report.usage.absent.sort()).toEqual(['Bucket', 'HelmRepository', 'OCIRepository', 'Receiver']);
      expect(second.report.remediation).toMatchObject({ deleted: 0, failed: 0 });
    });
  });
});
