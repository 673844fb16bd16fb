// The chart as rendered: lint, the defaults and the all-jobs example, every bad values file
// rejected naming the key, the shape every CronJob must have (restricted pods, short-lived
// audience-bound tokens, labels a manual run keeps, fail-fast on config errors), RBAC only for
// the sweep, names that match the Vault roles under policies/, config files each job accepts,
// and a values.schema.json in step with the jobs' config specs.
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { commonConfig, loadConfig, mergeSpecs, type ConfigSpec } from '@vaultkeeper/runtime';
import { POLICIES_DIR, REPO_ROOT } from '../stack/layout.ts';
import { ALL_JOBS_VALUES, CHART_DIR, helm, parseManifests, renderChart, run, valuesFile, type K8sObject } from '../helm/chart.ts';
import { SCHEMA_FILE, buildValuesSchema, chartJobNames, renderSchema } from '../helm/values-schema.ts';

const BAD_VALUES_DIR = join(REPO_ROOT, 'test/e2e/fixtures/helm-bad-values');
const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
const component = (o: K8sObject) => o.metadata.labels?.['app.kubernetes.io/component'] ?? '';

describe('helm lint and helm template', () => {
  it('lints the default values and the all-jobs example', async () => {
    for (const args of [[], ['-f', ALL_JOBS_VALUES]]) {
      const res = await run('helm', ['lint', CHART_DIR, '--strict', ...args]);
      expect(res.stdout + res.stderr).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(res.code).toBe(0);
    }
  });

  it('renders nothing but notes for the default values: every job is off until turned on', async () => {
    expect(await renderChart()).toEqual([]);
    // NOTES are rendered by install only, and helm install needs an apiserver: the stack's.
    const notes = await helm(['install', 'vaultkeeper', CHART_DIR, '--dry-run=client', '-n', 'vkh-notes']);
    expect(notes.stdout).toContain('No job is enabled');
  });

  it('renders one CronJob, ServiceAccount, ConfigMap and NetworkPolicy per job for the all-jobs example', async () => {
    const objects = await renderChart({ valueFiles: [ALL_JOBS_VALUES] });
    const jobs = chartJobNames();
    for (const kind of ['CronJob', 'ServiceAccount', 'ConfigMap', 'NetworkPolicy']) {
      expect({ kind, components: byKind(objects, kind).map(component).sort() }).toEqual({ kind, components: jobs });
    }
    expect(byKind(objects, 'CronJob').map((c) => c.metadata.name).sort()).toEqual(jobs.map((j) => `vaultkeeper-${j}`));
  });
});

describe('values.schema.json rejects bad values, naming the key', () => {
  const files = readdirSync(BAD_VALUES_DIR).filter((f) => f.endsWith('.yaml')).sort();
  it('has bad values files to try', () => expect(files.length).toBeGreaterThanOrEqual(20));
  for (const file of files) {
    it(file, async () => {
      const text = readFileSync(join(BAD_VALUES_DIR, file), 'utf8');
      const expected = [...text.matchAll(/^# expect: (.+)$/gm)].map((m) => m[1]!.trim());
      expect(expected.length).toBeGreaterThan(0);
      // helm template and helm install validate alike; template needs no cluster.
      const res = await run('helm', ['template', 'vaultkeeper', CHART_DIR, '-f', join(BAD_VALUES_DIR, file)]);
      expect(res.code).not.toBe(0);
      for (const e of expected) expect(res.stderr).toContain(e);
    });
  }

  it('refuses a release name that makes a CronJob name longer than 52 characters', async () => {
    const release = 'vaultkeeper-for-the-production-cluster-eu-west';
    const res = await run('helm', ['template', release, CHART_DIR, '-f', valuesFile({ vault: { address: 'https://v:8200' }, jobs: { 'emergency-token': { enabled: true } } })]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('jobs.emergency-token: the CronJob name');
    expect(res.stderr).toContain('longer than 52 characters');
  });

  it('is the file the jobs\' config specs give (run `pnpm helm:schema` after changing a job\'s config)', async () => {
    const { schema } = await buildValuesSchema();
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(renderSchema(schema));
  });
});

describe('what every rendered CronJob and its pod look like', async () => {
  const objects = await renderChart({ release: 'vaultkeeper', namespace: 'vaultkeeper', valueFiles: [ALL_JOBS_VALUES] });
  const cronJobs = byKind(objects, 'CronJob');

  it('runs every job the safe way: Forbid, a starting deadline, a TTL, fail fast on exit 2, no restarts in place', () => {
    for (const cron of cronJobs) {
      const job = component(cron);
      const spec = cron.spec;
      expect({ job, concurrencyPolicy: spec.concurrencyPolicy }).toEqual({ job, concurrencyPolicy: 'Forbid' });
      expect(spec.startingDeadlineSeconds, job).toBeGreaterThan(0);
      expect(spec.timeZone, job).toBe('Etc/UTC');
      expect(spec.jobTemplate.spec.ttlSecondsAfterFinished, job).toBeGreaterThan(0);
      expect(spec.jobTemplate.spec.activeDeadlineSeconds, job).toBeGreaterThan(0);
      expect(spec.jobTemplate.spec.podFailurePolicy.rules).toContainEqual({ action: 'FailJob', onExitCodes: { operator: 'In', values: [2] } });
      expect(spec.jobTemplate.spec.template.spec.restartPolicy, job).toBe('Never');
    }
  });

  it('has schedules that fit each job', () => {
    const schedules = Object.fromEntries(cronJobs.map((c) => [component(c), c.spec.schedule]));
    expect(schedules).toEqual({
      'raft-snapshot': '0 2 * * *', // nightly
      'kms-probe': '*/5 * * * *', // every five minutes
      'secret-sweep': '30 3 * * *', // daily
      'emergency-token': '0 4 * * *', // daily check, rotates when older than 27 days: monthly
      'oidc-rotation': '17 * * * *', // hourly sync
    });
  });

  it('puts the recommended labels on the CronJob, its job template (a manual run copies only that) and the pod', () => {
    for (const cron of cronJobs) {
      const job = component(cron);
      for (const labels of [cron.metadata.labels, cron.spec.jobTemplate.metadata.labels, cron.spec.jobTemplate.spec.template.metadata.labels]) {
        expect(labels).toMatchObject({
          'app.kubernetes.io/name': 'vaultkeeper',
          'app.kubernetes.io/instance': 'vaultkeeper',
          'app.kubernetes.io/version': expect.any(String),
          'app.kubernetes.io/managed-by': 'Helm',
          'app.kubernetes.io/component': job,
          'helm.sh/chart': expect.stringMatching(/^vaultkeeper-/),
        });
      }
    }
  });

  it('makes pods that meet the restricted Pod Security Standard with a read-only root and /tmp as an emptyDir', () => {
    for (const cron of cronJobs) {
      const pod = cron.spec.jobTemplate.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.containers).toHaveLength(1);
      const c = pod.containers[0];
      expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } });
      expect(c.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
      expect(pod.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '256Mi' } });
      expect(c.args[0]).toBe(component(cron));
      expect(c.resources.limits.memory).toBeDefined();
    }
  });

  it('mounts no default token, only a short-lived one bound to Vault\'s audience, and a Kubernetes API token only for the sweep', () => {
    for (const cron of cronJobs) {
      const job = component(cron);
      const pod = cron.spec.jobTemplate.spec.template.spec;
      expect(pod.automountServiceAccountToken, job).toBe(false);
      expect(pod.serviceAccountName).toBe(`vaultkeeper-${job}`);
      const vaultToken = pod.volumes.find((v: any) => v.name === 'vault-token');
      expect(vaultToken.projected.sources).toEqual([{ serviceAccountToken: { audience: 'vault', expirationSeconds: 600, path: 'token' } }]);
      const c = pod.containers[0];
      expect(c.env).toContainEqual({ name: 'VAULT_AUTH_TOKEN_PATH', value: '/var/run/secrets/vaultkeeper/token' });
      expect(c.volumeMounts).toContainEqual({ name: 'vault-token', mountPath: '/var/run/secrets/vaultkeeper', readOnly: true });
      const apiAccess = pod.volumes.some((v: any) => v.name === 'kube-api-access');
      expect({ job, apiAccess }).toEqual({ job, apiAccess: job === 'secret-sweep' });
    }
  });

  it('keeps secrets out of env and ConfigMaps: no secretKeyRef, no token-like variable, config only in the ConfigMap', () => {
    for (const cron of cronJobs) {
      const c = cron.spec.jobTemplate.spec.template.spec.containers[0];
      for (const e of c.env ?? []) {
        expect(e.valueFrom?.secretKeyRef).toBeUndefined();
        expect(e.name).not.toMatch(/TOKEN$|SECRET|PASSWORD/);
      }
      expect(c.envFrom).toBeUndefined();
    }
    for (const cm of byKind(objects, 'ConfigMap')) {
      const config = parseYaml(cm.data['config.yaml']) as Record<string, any>;
      expect(config.vault.token).toBeUndefined();
      expect(JSON.stringify(config)).not.toMatch(/"(token|secret|password|clientSecret|secretAccessKey)":/i);
    }
  });

  it('gives Kubernetes permissions to the sweep alone: read-only, plus delete on Secrets only with remediation on', async () => {
    const rbac = objects.filter((o) => o.apiVersion.startsWith('rbac.authorization.k8s.io'));
    // Its namespaced kinds, and (-cluster) the cluster-scoped kinds that can name a Secret.
    expect(rbac.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/vaultkeeper-secret-sweep',
      'ClusterRole/vaultkeeper-secret-sweep-cluster',
      'ClusterRoleBinding/vaultkeeper-secret-sweep',
      'ClusterRoleBinding/vaultkeeper-secret-sweep-cluster',
    ]);
    expect(new Set(rbac.map(component))).toEqual(new Set(['secret-sweep']));
    const grants = (objs: K8sObject[]) =>
      byKind(objs, 'ClusterRole').flatMap((role) => role.rules.flatMap((r: any) => r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${res}:${v}`))));
    const writes = (objs: K8sObject[]) => grants(objs).filter((g: string) => !/:(get|list)$/.test(g));
    expect(grants(objects)).toEqual(expect.arrayContaining(['secrets:get', 'secrets:list', 'pods:list', 'serviceaccounts:list', 'storageclasses:list']));
    expect(writes(objects)).toEqual([]);

    for (const turnOn of [{ config: { remediation: { deleteMigrated: true } } }, { args: ['sweep', '--delete-migrated'] }]) {
      const on = await renderChart({ valueFiles: [ALL_JOBS_VALUES, valuesFile({ jobs: { 'secret-sweep': turnOn } })] });
      expect(writes(on)).toEqual(['secrets:delete']);
    }
    // Limited to some namespaces: a RoleBinding in each; only the cluster-scoped kinds keep a ClusterRoleBinding.
    const scoped = await renderChart({ valueFiles: [ALL_JOBS_VALUES, valuesFile({ jobs: { 'secret-sweep': { config: { namespaces: ['apps', 'web'] } } } })] });
    expect(scoped.filter((o) => o.kind.endsWith('Binding')).map((o) => `${o.kind}/${o.metadata.namespace ?? o.metadata.name}`).sort()).toEqual([
      'ClusterRoleBinding/vaultkeeper-secret-sweep-cluster',
      'RoleBinding/apps',
      'RoleBinding/web',
    ]);
    // Ingresses and Gateways of any namespace may name a Secret of `apps` or `web`: listed cluster-wide.
    const clusterWide = byKind(scoped, 'ClusterRole').filter((o) => o.metadata.name.endsWith('-cluster'));
    expect(grants(clusterWide)).toEqual(expect.arrayContaining(['ingresses:list', 'gateways:list', 'storageclasses:list']));
  });

  it('limits egress to DNS, Vault, the Pushgateway and each job\'s own endpoints when NetworkPolicy is on', () => {
    for (const np of byKind(objects, 'NetworkPolicy')) {
      const job = component(np);
      expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
      expect(np.spec.ingress).toEqual([]);
      expect(np.spec.podSelector.matchLabels).toEqual({ 'app.kubernetes.io/name': 'vaultkeeper', 'app.kubernetes.io/instance': 'vaultkeeper', 'app.kubernetes.io/component': job });
      const ports = np.spec.egress.map((r: any) => r.ports.map((p: any) => `${p.port}/${p.protocol}`).join(','));
      expect(ports.slice(0, 3)).toEqual(['53/UDP,53/TCP', '8200/TCP', '9091/TCP']);
      if (job === 'secret-sweep') expect(ports).toContain('443/TCP,6443/TCP');
    }
  });

  it('lets each pod reach what the chart supports by default: NodeLocal DNSCache, EKS Pod Identity and IMDS for the AWS jobs, an in-cluster Authentik for oidc-rotation', async () => {
    const rule = (np: K8sObject, cidr: string) =>
      np.spec.egress.find((r: any) => (r.to ?? []).some((p: any) => p.ipBlock?.cidr === cidr))?.ports.map((p: any) => `${p.port}/${p.protocol}`);
    const awsJobs = ['emergency-token', 'kms-probe', 'raft-snapshot'];
    for (const np of byKind(objects, 'NetworkPolicy')) {
      const job = component(np);
      expect({ job, nodeLocalDns: rule(np, '169.254.20.10/32') }).toEqual({ job, nodeLocalDns: ['53/UDP', '53/TCP'] });
      const aws = awsJobs.includes(job) ? ['80/TCP'] : undefined;
      expect({ job, podIdentity: rule(np, '169.254.170.23/32'), podIdentityV6: rule(np, 'fd00:ec2::23/128'), imds: rule(np, '169.254.169.254/32') }).toEqual({ job, podIdentity: aws, podIdentityV6: aws, imds: aws });
      // Authentik's pod ports (a NetworkPolicy matches after the Service's port translation).
      const ports = np.spec.egress.map((r: any) => r.ports.map((p: any) => `${p.port}/${p.protocol}`).join(','));
      expect({ job, authentik: ports.includes('9443/TCP,9000/TCP') }).toEqual({ job, authentik: job === 'oidc-rotation' });
    }

    // Each is a value: turned off, its rule is gone; its address can be changed.
    const off = await renderChart({
      valueFiles: [ALL_JOBS_VALUES, valuesFile({ networkPolicy: { imds: { enabled: false }, authentik: { enabled: false }, nodeLocalDns: { to: [{ ipBlock: { cidr: '169.254.0.10/32' } }] } } })],
    });
    for (const np of byKind(off, 'NetworkPolicy')) {
      const job = component(np);
      expect(rule(np, '169.254.169.254/32'), job).toBeUndefined();
      expect(rule(np, '169.254.0.10/32'), job).toEqual(['53/UDP', '53/TCP']);
      expect(rule(np, '169.254.170.23/32'), job).toEqual(awsJobs.includes(job) ? ['80/TCP'] : undefined);
      expect(np.spec.egress.some((r: any) => r.ports.some((p: any) => p.port === 9443)), job).toBe(false);
    }
  });

  it('prints, for each job, how to run it by hand, where its logs are and where its metrics go', async () => {
    // A namespace of its own: even a client dry run refuses to adopt the stack's ServiceAccounts.
    const res = await helm(['install', 'vaultkeeper', CHART_DIR, '--dry-run=client', '-n', 'vkh-notes', '-f', ALL_JOBS_VALUES]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('apply\nthem with VAULTKEEPER_NAMESPACE=vkh-notes');
    for (const job of chartJobNames()) {
      expect(res.stdout).toContain(`kubectl -n vkh-notes create job --from=cronjob/vaultkeeper-${job} ${job}-manual-$(date +%s)`);
      expect(res.stdout).toContain(`app.kubernetes.io/component=${job} --tail=-1`);
      expect(res.stdout).toContain(`vaultkeeper_${job.replace(/-/g, '_')}_* pushed to http://prometheus-pushgateway.monitoring.svc:9091`);
    }
  });

  it('names ServiceAccounts and Vault roles exactly as policies/*/kubernetes-role.json binds them', () => {
    for (const job of chartJobNames()) {
      const role = JSON.parse(readFileSync(join(POLICIES_DIR, job, 'kubernetes-role.json'), 'utf8')) as {
        bound_service_account_names: string[];
        bound_service_account_namespaces: string[];
        audience: string;
        token_policies: string[];
      };
      const cron = cronJobs.find((c) => component(c) === job)!;
      const pod = cron.spec.jobTemplate.spec.template.spec;
      const sa = byKind(objects, 'ServiceAccount').find((s) => component(s) === job)!;
      expect(role.bound_service_account_names).toEqual([sa.metadata.name]);
      expect(pod.serviceAccountName).toBe(sa.metadata.name);
      expect(role.bound_service_account_namespaces).toEqual(['vaultkeeper']);
      expect(role.token_policies).toContain(`vaultkeeper-${job}`);
      expect(existsSync(join(POLICIES_DIR, job, 'policy.hcl'))).toBe(true);
      const audience = pod.volumes.find((v: any) => v.name === 'vault-token').projected.sources[0].serviceAccountToken.audience;
      expect(audience).toBe(role.audience);
      const cm = byKind(objects, 'ConfigMap').find((c) => component(c) === job)!;
      const config = parseYaml(cm.data['config.yaml']) as { vault: { auth: { role: string; method: string } } };
      // policies/apply.sh writes the role of policies/<job>/ as vaultkeeper-<job>.
      expect(config.vault.auth).toMatchObject({ method: 'kubernetes', role: `vaultkeeper-${job}` });
      expect(sa.automountServiceAccountToken).toBe(false);
    }
    // And the other way round: every job folder's policies have a chart entry, and none is extra.
    const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8')) as { jobs: Record<string, unknown> };
    expect(Object.keys(values.jobs).sort()).toEqual(chartJobNames());
  });

  it('writes config files that each job itself accepts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vk-helm-config-'));
    for (const cm of byKind(objects, 'ConfigMap')) {
      const job = component(cm);
      const jobFile = join(REPO_ROOT, 'jobs', job, 'src', 'job.ts');
      if (!existsSync(jobFile)) {
        console.warn(`!!! SKIPPED: config check of ${job}: jobs/${job}/src/job.ts does not exist yet`);
        continue;
      }
      const mod = (await import(pathToFileURL(jobFile).href)) as { job: { config: ConfigSpec<any> } };
      const file = join(dir, `${job}.yaml`);
      writeFileSync(file, cm.data['config.yaml']);
      // The job's own loader: strict about unknown keys and types, env on top (none here).
      expect(() => loadConfig(mergeSpecs(commonConfig, mod.job.config), { env: {}, file })).not.toThrow();
    }
  });

  it('renders objects the YAML parser reads back whole (no template ever emits a broken document)', async () => {
    const res = await run('helm', ['template', 'vaultkeeper', CHART_DIR, '-f', ALL_JOBS_VALUES]);
    expect(parseManifests(res.stdout).length).toBe(objects.length);
    expect(objects.every((o) => o.metadata.name && o.apiVersion)).toBe(true);
  });
});
