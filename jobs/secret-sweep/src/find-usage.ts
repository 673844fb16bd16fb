import type { V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import type { Logger } from '@vaultkeeper/runtime';
import type { Kube } from './kube.ts';
import { listPages, type FetchPage } from './list-secrets.ts';

export interface UsageRef {
  kind: 'Pod' | 'ServiceAccount';
  name: string;
  /** How it refers to the Secret: env, envFrom, volume, imagePullSecrets, secrets… */
  via: string;
}

/** Pod annotations by which the Vault agent injector is told to use a Secret of the pod's namespace. */
export const INJECTOR_ANNOTATIONS = ['vault.hashicorp.com/agent-extra-secret', 'vault.hashicorp.com/tls-secret'];

// A Secret mounted by a 500-pod DaemonSet needs naming a few of them, not all.
const MAX_REFS_PER_SECRET = 10;

export interface UsageEntry {
  /** References found (pods and service accounts, each way of referring counted once). */
  count: number;
  /** The first few of them. */
  refs: UsageRef[];
}

/**
 * Which Secrets pods and service accounts refer to. Built before the Secrets are listed, so
 * the Secrets can stream past page by page; it holds names only, bounded by the number of
 * references, not by the number of Secrets.
 */
export class UsageIndex {
  private readonly refs = { Pod: new Map<string, UsageEntry>(), ServiceAccount: new Map<string, UsageEntry>() };
  private readonly injector = new Map<string, { pod: string; annotation: string }>();
  pods = 0;
  serviceAccounts = 0;

  usedBy(namespace: string, name: string): UsageEntry | undefined {
    const key = `${namespace}/${name}`;
    const pod = this.refs.Pod.get(key);
    const sa = this.refs.ServiceAccount.get(key);
    if (!pod || !sa) return pod ?? sa;
    return { count: pod.count + sa.count, refs: [...pod.refs, ...sa.refs].slice(0, MAX_REFS_PER_SECRET) };
  }

  injectorPodFor(namespace: string, name: string): { pod: string; annotation: string } | undefined {
    return this.injector.get(`${namespace}/${name}`);
  }

  /** Forgets what one kind's list gave, when that list has to start over. */
  clear(kind: UsageRef['kind']): void {
    this.refs[kind].clear();
    if (kind === 'Pod') {
      this.injector.clear();
      this.pods = 0;
    } else this.serviceAccounts = 0;
  }

  private add(namespace: string, secret: string | undefined, ref: UsageRef): void {
    if (!secret) return;
    const key = `${namespace}/${secret}`;
    const map = this.refs[ref.kind];
    const entry = map.get(key) ?? { count: 0, refs: [] };
    if (!entry.refs.some((r) => r.name === ref.name && r.via === ref.via)) {
      entry.count++;
      if (entry.refs.length < MAX_REFS_PER_SECRET) entry.refs.push(ref);
    }
    map.set(key, entry);
  }

  addPod(pod: V1Pod): void {
    this.pods++;
    const namespace = pod.metadata?.namespace ?? '';
    const name = pod.metadata?.name ?? '';
    const ref = (via: string): UsageRef => ({ kind: 'Pod', name, via });
    const spec = pod.spec;
    for (const [annotation, value] of Object.entries(pod.metadata?.annotations ?? {})) {
      if (INJECTOR_ANNOTATIONS.includes(annotation) && value) {
        this.injector.set(`${namespace}/${value}`, { pod: name, annotation });
        this.add(namespace, value, ref(`annotation ${annotation}`));
      }
    }
    if (!spec) return;
    for (const s of spec.imagePullSecrets ?? []) this.add(namespace, s.name, ref('imagePullSecrets'));
    for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])]) {
      for (const e of c.env ?? []) this.add(namespace, e.valueFrom?.secretKeyRef?.name, ref(`env ${e.name} (container ${c.name})`));
      for (const e of c.envFrom ?? []) this.add(namespace, e.secretRef?.name, ref(`envFrom (container ${c.name})`));
    }
    for (const v of spec.volumes ?? []) {
      this.add(namespace, v.secret?.secretName, ref(`volume ${v.name}`));
      for (const s of v.projected?.sources ?? []) this.add(namespace, s.secret?.name, ref(`projected volume ${v.name}`));
      this.add(namespace, v.csi?.nodePublishSecretRef?.name, ref(`csi volume ${v.name} (nodePublishSecretRef)`));
      this.add(namespace, v.azureFile?.secretName, ref(`azureFile volume ${v.name}`));
      // Storage plugins (cephfs, rbd, iscsi, flexVolume, scaleIO, storageos…) name theirs `secretRef`.
      for (const [kind, source] of Object.entries(v)) {
        const secretRef = (source as { secretRef?: { name?: unknown } } | undefined)?.secretRef;
        if (typeof secretRef?.name === 'string') this.add(namespace, secretRef.name, ref(`${kind} volume ${v.name} (secretRef)`));
      }
    }
  }

  addServiceAccount(sa: V1ServiceAccount): void {
    this.serviceAccounts++;
    const namespace = sa.metadata?.namespace ?? '';
    const name = sa.metadata?.name ?? '';
    for (const s of sa.imagePullSecrets ?? []) this.add(namespace, s.name, { kind: 'ServiceAccount', name, via: 'imagePullSecrets' });
    // `secrets` may name another namespace, but the kubelet only ever used the SA's own.
    for (const s of sa.secrets ?? []) this.add(s.namespace || namespace, s.name, { kind: 'ServiceAccount', name, via: 'secrets' });
  }
}

/** Lists pods and service accounts (paginated, like the Secrets) into a UsageIndex. */
export async function findUsage(kube: Kube, namespaces: string[], pageSize: number, log: Logger): Promise<UsageIndex> {
  const index = new UsageIndex();
  const scoped = <T>(all: FetchPage<T>, one: (namespace: string) => FetchPage<T>): Array<FetchPage<T>> =>
    namespaces.length === 0 ? [all] : namespaces.map(one);
  const cont = (c: string | undefined) => (c ? { _continue: c } : {});

  const pods = scoped<V1Pod>(
    (limit, c) => kube.call('list pods', (o) => kube.core.listPodForAllNamespaces({ limit, ...cont(c) }, o), { retry: true }),
    (namespace) => (limit, c) => kube.call(`list pods in ${namespace}`, (o) => kube.core.listNamespacedPod({ namespace, limit, ...cont(c) }, o), { retry: true }),
  );
  for await (const page of listPages(pods, { operation: 'list pods', pageSize, log })) {
    if (page.restarted) index.clear('Pod');
    for (const pod of page.items) index.addPod(pod);
  }

  const accounts = scoped<V1ServiceAccount>(
    (limit, c) => kube.call('list service accounts', (o) => kube.core.listServiceAccountForAllNamespaces({ limit, ...cont(c) }, o), { retry: true }),
    (namespace) => (limit, c) =>
      kube.call(`list service accounts in ${namespace}`, (o) => kube.core.listNamespacedServiceAccount({ namespace, limit, ...cont(c) }, o), { retry: true }),
  );
  for await (const page of listPages(accounts, { operation: 'list service accounts', pageSize, log })) {
    if (page.restarted) index.clear('ServiceAccount');
    for (const sa of page.items) index.addServiceAccount(sa);
  }
  return index;
}
