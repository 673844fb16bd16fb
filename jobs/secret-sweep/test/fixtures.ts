// Test data for the sweep against the local stack: namespaces of our own, created and removed
// through the real apiserver. The stack runs no controller-manager, so nothing garbage-collects:
// removing a namespace means deleting what is in it, then finalizing it ourselves.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api, type V1Secret } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { baoApi } from '../../../test/stack/http.ts';
import { REPO_ROOT } from '../../../test/stack/layout.ts';
import { kubectl, mintServiceAccountToken, readStack } from '../../../test/stack/stack.ts';
import { createLimiter } from '../src/concurrency.ts';

export function adminKube(): { core: CoreV1Api; rbac: RbacAuthorizationV1Api; kc: KubeConfig } {
  const kc = new KubeConfig();
  kc.loadFromFile(readStack().kube.kubeconfig);
  return { core: kc.makeApiClient(CoreV1Api), rbac: kc.makeApiClient(RbacAuthorizationV1Api), kc };
}

export function uniquePrefix(what: string): string {
  return `${what}-${randomBytes(3).toString('hex')}`;
}

/** A random value that cannot appear in any output by chance. */
export function planted(label: string): string {
  return `${label}-${randomBytes(12).toString('hex')}`;
}

export const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

export async function createNamespace(core: CoreV1Api, name: string): Promise<void> {
  await core.createNamespace({ body: { metadata: { name, labels: { 'vaultkeeper.io/test': 'secret-sweep' } } } });
  // No controller-manager: no `default` service account appears by itself, and pods need one.
  await core.createNamespacedServiceAccount({ namespace: name, body: { metadata: { name: 'default' } } });
}

/** Deletes everything the tests put in the namespace, then the namespace, finalizing it by hand. */
export async function dropNamespace(core: CoreV1Api, name: string): Promise<void> {
  const ignore404 = (err: unknown) => {
    if ((err as { code?: number }).code !== 404) throw err;
  };
  await core.deleteCollectionNamespacedPod({ namespace: name, gracePeriodSeconds: 0 }).catch(ignore404);
  // Workloads and other consumers some tests create (nothing else would remove them from etcd).
  await kubectl(['delete', 'deployments,statefulsets,daemonsets,replicasets,replicationcontrollers,jobs,cronjobs,ingresses', '--all', '-n', name, '--wait=false']).catch(() => undefined);
  await core.deleteCollectionNamespacedSecret({ namespace: name }).catch(ignore404);
  await core.deleteCollectionNamespacedServiceAccount({ namespace: name }).catch(ignore404);
  await core.deleteCollectionNamespacedConfigMap({ namespace: name }).catch(ignore404);
  await core.deleteNamespace({ name }).catch(ignore404);
  // The namespace controller would empty it and remove the `kubernetes` finalizer; we did the first.
  const ns = await core.readNamespace({ name }).catch((err: unknown) => (ignore404(err), undefined));
  if (ns) await core.replaceNamespaceFinalize({ name, body: { ...ns, spec: { finalizers: [] } } }).catch(ignore404);
}

/** Creates Secrets with bounded concurrency (the benchmark's 20,000 in a few seconds). */
export async function createSecrets(core: CoreV1Api, secrets: V1Secret[], concurrency = 64): Promise<void> {
  const limit = createLimiter(concurrency);
  await Promise.all(secrets.map((s) => limit(() => core.createNamespacedSecret({ namespace: s.metadata!.namespace!, body: s }))));
}

// ---- Vault (root token: test setup only) ------------------------------------------------

/**
 * The active node: standbys answer reads from their own Raft copy, which can lag a write made
 * a moment ago (https://openbao.org/docs/concepts/consistency/).
 */
async function activeAddr(): Promise<string> {
  const s = readStack();
  for (const n of s.openbao.nodes) {
    try {
      const res = await baoApi(n.addr, 'GET', 'sys/leader', { timeoutMs: 2_000 });
      if (res.status === 200 && res.body?.leader_address) return res.body.leader_address as string;
    } catch {
      // node down: ask the next
    }
  }
  return s.openbao.addr;
}

export async function kvPut(path: string, data: Record<string, unknown>): Promise<void> {
  const s = readStack();
  const res = await baoApi(await activeAddr(), 'POST', `secret/data/${path}`, { token: s.openbao.rootToken, body: { data } });
  if (res.status !== 200) throw new Error(`kv put ${path}: ${res.status}`);
}

export async function kvGet(path: string): Promise<{ data: Record<string, unknown>; version: number } | undefined> {
  const s = readStack();
  const res = await baoApi(await activeAddr(), 'GET', `secret/data/${path}`, { token: s.openbao.rootToken });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`kv get ${path}: ${res.status}`);
  return { data: res.body.data.data, version: res.body.data.metadata.version };
}

/** Deletes every version and the metadata of everything under a KV folder. */
export async function kvPurge(folder: string): Promise<void> {
  const s = readStack();
  const addr = await activeAddr();
  const list = await baoApi(addr, 'LIST', `secret/metadata/${folder}`, { token: s.openbao.rootToken });
  if (list.status !== 200 && list.status !== 404) throw new Error(`kv list ${folder}: ${list.status}`);
  for (const key of (list.body?.data?.keys ?? []) as string[]) {
    if (key.endsWith('/')) await kvPurge(`${folder}${key}`);
    else {
      const res = await baoApi(addr, 'DELETE', `secret/metadata/${folder}${key}`, { token: s.openbao.rootToken });
      if (res.status !== 204) throw new Error(`kv delete ${folder}${key}: ${res.status}`);
    }
  }
}

/** Runs every cleanup step even when one fails, then throws the first failure. */
export async function cleanupAll(steps: Array<() => Promise<unknown>>): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) await step().catch((err: unknown) => errors.push(err));
  if (errors.length) throw errors[0];
}

// ---- The job's own Kubernetes identity ---------------------------------------------------

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * A kubeconfig for the sweep's service account with exactly the RBAC rules the chart grants it
 * (helm/vaultkeeper/values.yaml), bound by RoleBindings in the given namespaces only, plus
 * `extraRules`. Proves the job works with what the chart gives it and nothing more.
 * `serviceAccount`: a Kubernetes identity of its own (created here, removed by cleanup), for a
 * role that must lack a cluster-wide rule: RBAC is the union of every binding of an account, and
 * the tests bind the chart's service account cluster-wide too.
 */
export async function sweepKubeconfig(
  namespaces: string[],
  roleName: string,
  opts: { remediation: boolean; extraRules?: unknown[]; withoutResources?: string[]; serviceAccount?: string },
): Promise<{ kubeconfig: string; cleanup: () => Promise<void> }> {
  const stack = readStack();
  const { rbac, core } = adminKube();
  const values = parseYaml(readFileSync(join(REPO_ROOT, 'helm/vaultkeeper/values.yaml'), 'utf8')) as {
    jobs: Record<string, { rbac: { rules: Rule[]; clusterRules?: Rule[]; remediationRules: Rule[] } }>;
  };
  const chart = values.jobs['secret-sweep']!.rbac;
  // A role that lacks some of the chart's rules: the job must notice, not guess.
  const without = (rules: Rule[]) =>
    rules.map((r) => ({ ...r, resources: r.resources.filter((x) => !(opts.withoutResources ?? []).includes(x)) })).filter((r) => r.resources.length > 0);
  const rules = without([...chart.rules, ...(opts.remediation ? chart.remediationRules : []), ...((opts.extraRules ?? []) as Rule[])]);
  const clusterRules = without(chart.clusterRules ?? []);
  const sa = opts.serviceAccount ?? stack.kube.serviceAccounts['secret-sweep'] ?? 'vaultkeeper-secret-sweep';
  if (opts.serviceAccount) await core.createNamespacedServiceAccount({ namespace: stack.kube.namespace, body: { metadata: { name: sa } } });
  const subjects = [{ kind: 'ServiceAccount', name: sa, namespace: stack.kube.namespace }];
  await rbac.createClusterRole({ body: { metadata: { name: roleName }, rules: rules as never } });
  // Cluster-scoped kinds (StorageClasses, ClusterIssuers) only a ClusterRoleBinding can grant, as the chart does.
  if (clusterRules.length) {
    await rbac.createClusterRole({ body: { metadata: { name: `${roleName}-cluster` }, rules: clusterRules as never } });
    await rbac.createClusterRoleBinding({
      body: { metadata: { name: `${roleName}-cluster` }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${roleName}-cluster` }, subjects },
    });
  }
  for (const ns of namespaces) {
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: roleName },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
        subjects,
      },
    });
  }
  const token = await mintServiceAccountToken(stack.kube.namespace, sa, { expirationSeconds: 3600 });
  const dir = mkdtempSync(join(tmpdir(), 'vk-sweep-kube-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'stack', cluster: { server: stack.kube.server, 'certificate-authority': stack.kube.caFile } }],
      users: [{ name: sa, user: { token } }],
      contexts: [{ name: 'sweep', context: { cluster: 'stack', user: sa } }],
      'current-context': 'sweep',
    }),
    { mode: 0o600 },
  );
  return {
    kubeconfig,
    cleanup: async () => {
      for (const ns of namespaces) await rbac.deleteNamespacedRoleBinding({ namespace: ns, name: roleName }).catch(() => undefined);
      await rbac.deleteClusterRole({ name: roleName }).catch(() => undefined);
      await rbac.deleteClusterRoleBinding({ name: `${roleName}-cluster` }).catch(() => undefined);
      await rbac.deleteClusterRole({ name: `${roleName}-cluster` }).catch(() => undefined);
      if (opts.serviceAccount) await core.deleteNamespacedServiceAccount({ namespace: stack.kube.namespace, name: sa }).catch(() => undefined);
    },
  };
}
