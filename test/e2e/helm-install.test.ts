// The chart against the stack's real kube-apiserver: install (server-side validation of every
// object), each ServiceAccount's permissions, a manual run of every job from its CronJob whose
// pod spec then runs as a local process from the image's own files, the restricted Pod Security
// Standard, upgrade, and an uninstall that leaves nothing behind. The Vault side is set up the
// way docs/operations.md tells an operator to: a Kubernetes auth mount for "this cluster" and
// policies/apply.sh.
import { DeleteObjectsCommand, ListObjectVersionsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baoApi } from '../stack/http.ts';
import { REPO_ROOT } from '../stack/layout.ts';
import { kubectl, readStack, waitForHealthyCluster, type StackInfo } from '../stack/stack.ts';
import { findPlantedSecrets } from '../support/run-job.ts';
import {
  ALL_JOBS_VALUES,
  CHART_DIR,
  buildBundles,
  createNamespace,
  deleteNamespace,
  grantedBeyondBaseline,
  helm,
  kubectlAs,
  kubectlJson,
  objectsLabelled,
  readDockerfile,
  run,
  stageImage,
  valuesFile,
} from '../helm/chart.ts';
import { chartJobNames } from '../helm/values-schema.ts';
import { runPodLocally, type PodRun } from '../helm/pod-runner.ts';

const id = randomBytes(3).toString('hex');
const NS = `vkh-${id}`;
// Contains the chart name, so the objects are named vaultkeeper-<id>-<job>.
const RELEASE = `vaultkeeper-${id}`;
// "This cluster's" Kubernetes auth mount: the roles policies/apply.sh writes there bind this
// test's namespace, and nothing of the stack's own kubernetes/ mount changes.
const MOUNT = `kubernetes-vkh-${id}`;
const KV_PREFIX = `vkh-${id}`;
const S3_PREFIX = `vkh-${id}/`;
const ET_STATE = `vaultkeeper/emergency-token/vkh-${id}/state`;
const ET_KEY = `emergency-token/vkh-${id}/breakglass.json`;
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;
const sa = (job: string) => `system:serviceaccount:${NS}:vaultkeeper-${job}`;
const cronJob = (job: string) => `${RELEASE}-${job}`;

let stack: StackInfo;
let imageRoot = '';
let built: string[] = [];
/** Each local pod's folder (its mounts, service-account tokens included): removed at the end. */
const podDirs: string[] = [];
const planted = { migrated: `vkh-migrated-${randomBytes(12).toString('hex')}`, leftover: `vkh-leftover-${randomBytes(12).toString('hex')}` };

/** The bao CLI against the stack as root (the token in the environment, never on a command line). */
const VAULT_CA_CONFIGMAP = 'vault-ca';

function baoCliEnv(): Record<string, string> {
  return { VAULT_ADDR: stack.openbao.addr, VAULT_TOKEN: stack.openbao.rootToken, ...(stack.openbao.tls ? { VAULT_CACERT: stack.openbao.tls.caFile } : {}) };
}

function bao(args: string[], env: Record<string, string> = {}) {
  return run('bao', args, { env: { ...process.env, ...baoCliEnv(), ...env } });
}

/** The AWS credentials an EKS pod would get from IRSA / Pod Identity; moto's here. */
function awsPlatformEnv(): Record<string, string> {
  return { AWS_ACCESS_KEY_ID: stack.aws.accessKeyId, AWS_SECRET_ACCESS_KEY: stack.aws.secretAccessKey };
}

interface Scenario {
  /** The job's `config` in the chart values for this install. */
  config: () => Record<string, unknown>;
  /** Its extraEnv in the chart values. */
  extraEnv?: () => Array<{ name: string; value: string }>;
  platformEnv?: () => Record<string, string>;
  /**
   * The stack is shared: another engineer's test may have a node down right now. A run that
   * failed only for that is run again (same pod spec) once the cluster is whole.
   */
  failedForSharedStack?: (run: PodRun) => boolean;
  check: (run: PodRun) => Promise<void> | void;
}

// One entry per job the chart runs here. A job whose folder does not exist yet is still
// installed (CronJob, ServiceAccount, RBAC), but its manual run is skipped, loudly.
const scenarios: Record<string, Scenario> = {
  'raft-snapshot': {
    config: () => ({
      snapshot: { cluster: 'stack' },
      s3: {
        bucket: stack.aws.buckets.snapshots,
        prefix: S3_PREFIX,
        endpoint: stack.aws.endpoint,
        region: stack.aws.region,
        forcePathStyle: true,
        kmsKeyId: stack.aws.dataKey.alias,
        partSizeMiB: 5,
      },
    }),
    platformEnv: awsPlatformEnv,
    check: async (run) => {
      expect(run.summary?.outcome).toBe('success');
      const keys = await s3Keys(`${S3_PREFIX}stack/`);
      expect(keys.filter((k) => k.endsWith('.snap') && !k.includes('/.incoming/')).length).toBeGreaterThanOrEqual(1);
    },
  },
  // The break-glass credential, delivered into the versioned bucket, envelope-encrypted with KMS.
  'emergency-token': {
    config: () => ({
      breakglass: { cluster: `vkh-${id}` },
      state: { path: ET_STATE },
      sink: { type: 's3', s3: { bucket: stack.aws.buckets.breakglass, key: ET_KEY, kmsKeyId: stack.aws.dataKey.alias, forcePathStyle: true } },
    }),
    // The SDK's own variables for where AWS is: not secret, so plain env in the values.
    extraEnv: () => [
      { name: 'AWS_REGION', value: stack.aws.region },
      { name: 'AWS_ENDPOINT_URL', value: stack.aws.endpoint },
    ],
    platformEnv: awsPlatformEnv,
    check: async (run) => {
      expect(run.summary?.outcome).toBe('success');
      expect(run.summary?.action).toBe('rotated');
      expect(await breakglassKeys()).toContain(ET_KEY);
    },
  },
  'kms-probe': {
    config: () => ({
      aws: { region: stack.aws.region, endpoint: stack.aws.endpoint },
      kms: { keyId: stack.aws.unsealKey.alias },
      // What the chart's raft-snapshot and emergency-token runs just left is what the probe must find.
      // The raft-snapshot run above names its objects 'stack' (snapshot.cluster): so must the probe.
      snapshot: { bucket: stack.aws.buckets.snapshots, prefix: S3_PREFIX, cluster: 'stack', forcePathStyle: true, maxAgeSeconds: '1h' },
      emergencyToken: { enabled: true, statePath: `secret/data/${ET_STATE}` },
      criticalChecks: ['kms-key', 'kms-roundtrip', 'vault-nodes', 'raft', 'snapshot-age', 'emergency-token'],
      table: false,
    }),
    platformEnv: awsPlatformEnv,
    failedForSharedStack: (run) => {
      const failed = (run.summary?.failed as string[] | undefined) ?? [];
      return failed.length > 0 && failed.every((f) => /^(vault-nodes|raft):/.test(f));
    },
    check: (run) => {
      expect(run.summary?.outcome).toBe('success');
      const checks = run.summary?.checks as Record<string, { status: string }> | undefined;
      expect(checks?.['snapshot-age']?.status).toBe('ok');
      expect(checks?.['emergency-token']?.status).toBe('ok');
    },
  },
  'secret-sweep': {
    config: () => ({
      namespaces: [NS],
      vaultKv: { sources: [`secret:${KV_PREFIX}/`] },
      report: { format: 'json' },
    }),
    check: (run) => {
      expect(run.summary?.outcome).toBe('success');
      // The two planted Secrets (and Helm's own release record) were seen through the RBAC the chart gave.
      expect(Number(run.summary?.secrets)).toBeGreaterThanOrEqual(2);
      expect(findPlantedSecrets(run.all, planted)).toEqual([]);
    },
  },
  // Hourly sync against the stack's own auth/oidc and the Authentik stand-in, with a record of
  // its own: Authentik and Vault already agree there, so it must find nothing to change.
  'oidc-rotation': {
    config: () => ({ record: { path: `vaultkeeper/oidc-rotation/vkh-${id}` } }),
    check: (run) => {
      expect(run.summary?.outcome).toBe('success');
    },
  },
};

function s3Client(): S3Client {
  return new S3Client({
    region: stack.aws.region,
    endpoint: stack.aws.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: stack.aws.accessKeyId, secretAccessKey: stack.aws.secretAccessKey },
  });
}

async function s3Keys(prefix: string, bucket = stack.aws.buckets.snapshots): Promise<string[]> {
  const s3 = s3Client();
  try {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    return (res.Contents ?? []).map((c) => c.Key!);
  } finally {
    s3.destroy();
  }
}

const breakglassKeys = () => s3Keys(`emergency-token/vkh-${id}/`, stack.aws.buckets.breakglass);

async function cleanS3(): Promise<void> {
  const s3 = s3Client();
  try {
    const snapshots = await s3Keys(S3_PREFIX);
    if (snapshots.length) await s3.send(new DeleteObjectsCommand({ Bucket: stack.aws.buckets.snapshots, Delete: { Objects: snapshots.map((Key) => ({ Key })) } }));
    // The break-glass bucket is versioned: remove every version of the test's envelope.
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: stack.aws.buckets.breakglass, Prefix: `emergency-token/vkh-${id}/` }));
    const all = [...(versions.Versions ?? []), ...(versions.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key!, VersionId: v.VersionId! }));
    if (all.length) await s3.send(new DeleteObjectsCommand({ Bucket: stack.aws.buckets.breakglass, Delete: { Objects: all } }));
  } finally {
    s3.destroy();
  }
}

/** Revokes the break-glass credentials the emergency-token run made (they would live a month). */
async function revokeBreakglass(): Promise<void> {
  const res = await baoApi(stack.openbao.addr, 'GET', `secret/data/${ET_STATE}`, { token: stack.openbao.rootToken });
  const record = res.body?.data?.data as { accessor?: string; pending?: { accessor?: string } } | undefined;
  for (const accessor of [record?.accessor, record?.pending?.accessor]) {
    if (accessor) await baoApi(stack.openbao.addr, 'POST', 'auth/token/revoke-accessor', { token: stack.openbao.rootToken, body: { accessor } });
  }
  await baoApi(stack.openbao.addr, 'DELETE', `secret/metadata/${ET_STATE}`, { token: stack.openbao.rootToken });
}

function installValues(overrides: { jobs?: Record<string, Record<string, unknown>> } = {}) {
  const jobs: Record<string, Record<string, unknown>> = {};
  for (const job of chartJobNames()) {
    const scenario = scenarios[job];
    jobs[job] = {
      enabled: true,
      ...(scenario ? { config: scenario.config() } : {}),
      ...(scenario?.extraEnv ? { extraEnv: scenario.extraEnv() } : {}),
      ...overrides.jobs?.[job],
    };
  }
  return {
    image: { repository: 'registry.example.com/vaultkeeper', tag: 'local' },
    // The `vault` Service, as in a cluster; its CA from a ConfigMap (made in beforeAll).
    vault: {
      address: stack.openbao.serviceAddr,
      authMount: MOUNT,
      ...(stack.openbao.tls ? { caCert: { configMap: VAULT_CA_CONFIGMAP, key: 'ca.crt' } } : {}),
    },
    metrics: { pushgatewayUrl: stack.pushgateway.url },
    networkPolicy: { enabled: true },
    jobs,
  };
}

beforeAll(async () => {
  stack = readStack();
  const bundles = await buildBundles();
  built = bundles.built;
  for (const [job, why] of Object.entries(bundles.failed)) console.warn(`!!! ${job} does not build; its manual run is skipped:\n${why}`);
  imageRoot = await stageImage(built);

  await createNamespace(NS);
  if (stack.openbao.tls) {
    await kubectl(['-n', NS, 'create', 'configmap', VAULT_CA_CONFIGMAP, `--from-file=ca.crt=${stack.openbao.tls.caFile}`]);
  }

  // The one-time Vault setup of docs/operations.md, for a cluster whose auth mount is MOUNT.
  const reviewerJwt = join(mkdtempSync(join(tmpdir(), 'vkh-reviewer-')), 'reviewer.jwt');
  writeFileSync(reviewerJwt, stack.kube.reviewer.token, { mode: 0o600 });
  try {
    for (const args of [
      ['auth', 'enable', `-path=${MOUNT}`, 'kubernetes'],
      ['write', `auth/${MOUNT}/config`, `kubernetes_host=${stack.kube.server}`, `kubernetes_ca_cert=@${stack.kube.caFile}`, `token_reviewer_jwt=@${reviewerJwt}`, 'disable_local_ca_jwt=true'],
    ]) {
      const res = await bao(args);
      if (res.code !== 0) throw new Error(`bao ${args[0]} ${args[1]}: ${res.stderr}`);
    }
  } finally {
    rmSync(dirname(reviewerJwt), { recursive: true, force: true });
  }
  const apply = await run(join(REPO_ROOT, 'policies/apply.sh'), [], {
    env: { ...process.env, ...baoCliEnv(), VAULTKEEPER_NAMESPACE: NS, VAULT_K8S_AUTH_MOUNT: MOUNT },
  });
  if (apply.code !== 0) throw new Error(`policies/apply.sh: ${apply.stderr}`);

  // For the sweep: one Secret whose value Vault already holds (migrated), one it does not.
  const kv = await baoApi(stack.openbao.addr, 'POST', `secret/data/${KV_PREFIX}/app`, { token: stack.openbao.rootToken, body: { data: { password: planted.migrated } } });
  if (kv.status !== 200) throw new Error(`KV write: ${kv.status}`);
  for (const [name, value] of Object.entries({ 'app-credentials': planted.migrated, 'old-credentials': planted.leftover })) {
    const res = await kubectlAs(['-n', NS, 'create', 'secret', 'generic', name, `--from-literal=password=${value}`]);
    if (res.code !== 0) throw new Error(res.stderr);
  }
});

afterAll(async () => {
  if (imageRoot) rmSync(dirname(imageRoot), { recursive: true, force: true });
  for (const dir of podDirs) rmSync(dir, { recursive: true, force: true });
  if (!stack) return;
  await helm(['uninstall', RELEASE, '-n', NS, '--ignore-not-found']);
  await deleteNamespace(NS);
  await bao(['auth', 'disable', MOUNT]);
  await baoApi(stack.openbao.addr, 'DELETE', `secret/metadata/${KV_PREFIX}/app`, { token: stack.openbao.rootToken });
  await baoApi(stack.openbao.addr, 'DELETE', `secret/metadata/vaultkeeper/oidc-rotation/vkh-${id}`, { token: stack.openbao.rootToken });
  await revokeBreakglass();
  await cleanS3();
});

describe('the chart on the stack apiserver', () => {
  it('validates every object of the all-jobs example server-side (helm install --dry-run=server)', async () => {
    const res = await helm(['install', `${RELEASE}-dry`, CHART_DIR, '-n', NS, '-f', ALL_JOBS_VALUES, '--dry-run=server']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
  });

  it('installs every job: one CronJob, ServiceAccount and ConfigMap each, RBAC only for the sweep, no Pod Security warning', async () => {
    const res = await helm(['install', RELEASE, CHART_DIR, '-n', NS, '-f', valuesFile(installValues())]);
    expect(res.code, res.stderr).toBe(0);
    // The namespace warns on restricted: the apiserver checks the CronJobs' pod templates too.
    expect(res.stderr).not.toMatch(/PodSecurity|would violate/);
    expect(res.stdout).toContain(`kubectl -n ${NS} create job --from=cronjob/${cronJob('raft-snapshot')}`);

    const names = (kind: string) => kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['-n', NS, 'get', kind, '-l', SELECTOR]).then((l) => l.items.map((i) => i.metadata.name).sort());
    const jobs = chartJobNames();
    expect(await names('cronjobs')).toEqual(jobs.map(cronJob).sort());
    expect(await names('serviceaccounts')).toEqual(jobs.map((j) => `vaultkeeper-${j}`).sort());
    expect(await names('configmaps')).toEqual(jobs.map(cronJob).sort());
    expect(await names('networkpolicies')).toEqual(jobs.map(cronJob).sort());
    // The sweep is limited to this namespace by its config: a RoleBinding here; the one
    // ClusterRoleBinding grants only the kinds that name Secrets of any namespace (PersistentVolumes,
    // StorageClasses, ClusterIssuers; Ingresses and Gateways, listed cluster-wide by a namespaced sweep).
    expect(await names('rolebindings')).toEqual([cronJob('secret-sweep')]);
    const clusterBindings = await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['get', 'clusterrolebindings', '-l', SELECTOR]);
    expect(clusterBindings.items.map((b) => b.metadata.name)).toEqual([`${cronJob('secret-sweep')}-cluster`]);
  });

  it('gives each ServiceAccount exactly the Kubernetes permissions its job needs, and no more', async () => {
    const baseline = `system:serviceaccount:${NS}:vkh-baseline`;
    await kubectlAs(['-n', NS, 'create', 'serviceaccount', 'vkh-baseline']);
    // The sweep: read Secrets, and `list` every kind that can name one (docs/secret-sweep.md, "In use").
    // Cluster-wide: the cluster-scoped kinds, and Ingresses and Gateways, whose objects in any
    // namespace may name a Secret of the swept ones.
    const sweepClusterScoped = [
      'clusterissuers.cert-manager.io:list',
      'clustersecretstores.external-secrets.io:list',
      'gateways.gateway.networking.k8s.io:list',
      'gateways.networking.istio.io:list',
      'ingresses.networking.k8s.io:list',
      'persistentvolumes:list',
      'storageclasses.storage.k8s.io:list',
    ];
    const expected: Record<string, string[]> = {
      'secret-sweep': [
        ...sweepClusterScoped,
        'buckets.source.toolkit.fluxcd.io:list',
        'certificates.cert-manager.io:list',
        'cronjobs.batch:list',
        'daemonsets.apps:list',
        'deployments.apps:list',
        'gitrepositories.source.toolkit.fluxcd.io:list',
        'helmreleases.helm.toolkit.fluxcd.io:list',
        'helmrepositories.source.toolkit.fluxcd.io:list',
        'imagerepositories.image.toolkit.fluxcd.io:list',
        'issuers.cert-manager.io:list',
        'jobs.batch:list',
        'kustomizations.kustomize.toolkit.fluxcd.io:list',
        'ocirepositories.source.toolkit.fluxcd.io:list',
        'pods:list',
        'providers.notification.toolkit.fluxcd.io:list',
        'receivers.notification.toolkit.fluxcd.io:list',
        'replicasets.apps:list',
        'replicationcontrollers:list',
        'secrets:get',
        'secrets:list',
        'secretstores.external-secrets.io:list',
        'serviceaccounts:list',
        'statefulsets.apps:list',
      ].sort(),
    };
    const elsewhere: Record<string, string[]> = { 'secret-sweep': sweepClusterScoped };
    for (const job of chartJobNames()) {
      expect({ job, granted: await grantedBeyondBaseline(sa(job), baseline, NS) }).toEqual({ job, granted: expected[job] ?? [] });
      // In any other namespace only the cluster-scoped reads, and never a delete while remediation is off.
      expect({ job, granted: await grantedBeyondBaseline(sa(job), baseline, 'default') }).toEqual({ job, granted: elsewhere[job] ?? [] });
    }
    const can = async (verb: string, what: string, ns = NS) => (await kubectlAs(['auth', 'can-i', verb, what, '-n', ns], { as: sa('secret-sweep') })).stdout.trim();
    expect(await can('list', 'secrets')).toBe('yes');
    expect(await can('delete', 'secrets')).toBe('no');
    expect(await can('get', 'pods')).toBe('no');
    expect(await can('list', 'secrets', 'kube-system')).toBe('no');
    expect(await can('list', 'ingresses.networking.k8s.io', 'kube-system')).toBe('yes');
  });

  // In order: kms-probe checks what raft-snapshot and emergency-token store before it.
  const manualRuns = [...Object.keys(scenarios), ...chartJobNames().filter((j) => !scenarios[j])];
  for (const job of manualRuns) {
    const exists = existsSync(join(REPO_ROOT, 'jobs', job, 'src', 'main.ts'));
    if (!exists) console.warn(`!!! SKIPPED: manual run of ${job}: jobs/${job} has no src/main.ts yet`);
    it.skipIf(!exists)(`runs ${job} by hand: kubectl create job --from=cronjob, then its pod spec as a local process from the image's files`, async () => {
      if (!built.includes(job)) throw new Error(`${job} did not build, see the warning above`);
      const scenario = scenarios[job];
      if (!scenario) throw new Error(`jobs/${job} exists: add its scenario (config and check) to this test`);
      const manual = `manual-${job}`;
      const created = await kubectlAs(['-n', NS, 'create', 'job', `--from=cronjob/${cronJob(job)}`, manual]);
      expect(created.code, created.stderr).toBe(0);
      const jobObject = await kubectlJson(['-n', NS, 'get', 'job', manual]);
      // The manual Job carries the chart's labels and the TTL that cleans it up after it finishes.
      expect(jobObject.metadata.labels).toMatchObject({ 'app.kubernetes.io/instance': RELEASE, 'app.kubernetes.io/component': job, 'app.kubernetes.io/name': 'vaultkeeper' });
      expect(jobObject.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);

      const runIt = async () => {
        const r = await runPodLocally({ job: jobObject, image: readDockerfile(), imageRoot, platformEnv: scenario.platformEnv?.() ?? {}, timeoutMs: 100_000 });
        podDirs.push(r.dir);
        return r;
      };
      let podRun = await runIt();
      if (podRun.code !== 0 && scenario.failedForSharedStack?.(podRun)) {
        console.warn(`!!! ${job}: failed for a node another test has down (${JSON.stringify(podRun.summary?.failed)}); running it again once the cluster is whole`);
        await waitForHealthyCluster(3, 120_000);
        podRun = await runIt();
      }
      const context = `${job} exited ${podRun.code}\n${podRun.all.slice(-3000)}`;
      expect(podRun.code, context).toBe(0);
      // It logged in with the projected token: bound to Vault's audience and to this job's account.
      expect(podRun.tokens['/var/run/secrets/vaultkeeper/token']).toMatchObject({ aud: ['vault'], sub: sa(job) });
      const login = podRun.lines.find((l) => l.msg === 'logged in to Vault');
      expect(login, context).toMatchObject({ role: `vaultkeeper-${job}`, mount: MOUNT });
      expect(findPlantedSecrets(podRun.all, podRun.tokenValues)).toEqual([]);
      await scenario.check(podRun);
    }, 300_000);
  }

  it('runs a job by hand with other arguments, the way docs/operations.md shows (raft-snapshot verify)', async () => {
    if (!built.includes('raft-snapshot')) throw new Error('raft-snapshot did not build');
    // The documented recipe, through a shell: copy the CronJob's template, change the args, create it.
    const kube = `kubectl --kubeconfig ${stack.kube.kubeconfig}`;
    const res = await run('bash', [
      '-o',
      'pipefail',
      '-c',
      `${kube} -n ${NS} create job --from=cronjob/${cronJob('raft-snapshot')} verify-now --dry-run=client -o json ` +
        `| jq '.spec.template.spec.containers[0].args = ["raft-snapshot", "verify"]' | ${kube} create -f -`,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const jobObject = await kubectlJson(['-n', NS, 'get', 'job', 'verify-now']);
    const podRun = await runPodLocally({ job: jobObject, image: readDockerfile(), imageRoot, platformEnv: awsPlatformEnv(), timeoutMs: 110_000 });
    podDirs.push(podRun.dir);
    expect(podRun.code, podRun.all.slice(-3000)).toBe(0);
    expect(podRun.summary).toMatchObject({ command: 'verify', outcome: 'success' });
  });

  it('has alert rules (docs/prometheus-rules.yaml) that name only metrics the runs pushed', async () => {
    const rules = parseYaml(readFileSync(join(REPO_ROOT, 'docs/prometheus-rules.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> };
    const named = new Set(
      rules.groups
        .flatMap((g) => g.rules.map((r) => String(r.expr).replace(/"[^"]*"/g, '""')))
        .flatMap((expr) => expr.match(/\bvaultkeeper_[a-z_]+[a-z]\b/g) ?? []),
    );
    expect(named.size).toBeGreaterThan(8);
    const pushed = await (await fetch(`${stack.pushgateway.url}/metrics`)).text();
    const missing = [...named].filter((name) => !new RegExp(`^${name}[{ ]`, 'm').test(pushed));
    expect(missing).toEqual([]);
  });

  it('runs the Jobs pods under the restricted Pod Security Standard, and the apiserver rejects a pod that is not', async () => {
    for (const job of chartJobNames()) {
      const cron = await kubectlJson(['-n', NS, 'get', 'cronjob', cronJob(job)]);
      const podSpec = cron.spec.jobTemplate.spec.template.spec;
      const pod = (name: string, spec: unknown) => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS }, spec });
      const ok = await kubectlAs(['create', '-f', '-'], { input: pod(`pss-${job}`, podSpec) });
      expect({ job, stderr: ok.stderr, code: ok.code }).toEqual({ job, stderr: '', code: 0 });

      const bad = structuredClone(podSpec);
      delete bad.securityContext.runAsNonRoot;
      bad.containers[0].securityContext.allowPrivilegeEscalation = true;
      bad.containers[0].securityContext.capabilities = { add: ['NET_ADMIN'] };
      const rejected = await kubectlAs(['create', '-f', '-'], { input: pod(`pss-bad-${job}`, bad) });
      expect(rejected.code).not.toBe(0);
      expect(rejected.stderr).toMatch(/violates PodSecurity "restricted:latest"/);
      expect(rejected.stderr).toMatch(/allowPrivilegeEscalation != false/);
    }
    await kubectlAs(['-n', NS, 'delete', 'pods', '--all', '--wait=false']);
  });

  it('upgrades: a disabled job loses its objects; a cluster-wide sweep with remediation on may delete Secrets', async () => {
    const values = installValues({
      jobs: {
        'oidc-rotation': { enabled: false },
        'secret-sweep': { config: { ...scenarios['secret-sweep']!.config(), namespaces: [], remediation: { deleteMigrated: true } } },
      },
    });
    const res = await helm(['upgrade', RELEASE, CHART_DIR, '-n', NS, '-f', valuesFile(values)]);
    expect(res.code, res.stderr).toBe(0);
    // (The manual Job run earlier is not the release's: it goes with its TTL, not with the upgrade.)
    const left = (await objectsLabelled(`${SELECTOR},app.kubernetes.io/component=oidc-rotation`, NS)).filter((o) => !o.startsWith('job.batch/manual-'));
    expect(left).toEqual([]);
    expect(await kubectlJson<{ items: unknown[] }>(['-n', NS, 'get', 'rolebindings', '-l', SELECTOR]).then((l) => l.items)).toEqual([]);
    const can = async (verb: string, ns: string) => (await kubectlAs(['auth', 'can-i', verb, 'secrets', '-n', ns], { as: sa('secret-sweep') })).stdout.trim();
    expect(await can('delete', 'default')).toBe('yes');
    expect(await can('list', 'kube-system')).toBe('yes');
    expect(await can('create', 'default')).toBe('no');
    // The other jobs still have nothing.
    expect(await grantedBeyondBaseline(sa('kms-probe'), `system:serviceaccount:${NS}:vkh-baseline`, 'default')).toEqual([]);
  });

  it('uninstalls without leaving anything behind', async () => {
    // The manual Jobs are not the release's: in a cluster their ttlSecondsAfterFinished removes
    // them once they finish; here nothing ever finishes them, so the test removes its own.
    await kubectlAs(['-n', NS, 'delete', 'jobs', '-l', SELECTOR, '--wait=false']);
    const res = await helm(['uninstall', RELEASE, '-n', NS, '--wait']);
    expect(res.code, res.stderr).toBe(0);
    expect(await objectsLabelled(SELECTOR, NS)).toEqual([]);
    // Nor Helm's own release records.
    const records = await kubectlJson<{ items: unknown[] }>(['-n', NS, 'get', 'secrets', '-l', `owner=helm,name=${RELEASE}`]);
    expect(records.items).toEqual([]);
  });
});
