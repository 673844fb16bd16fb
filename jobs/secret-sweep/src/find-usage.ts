import { JobFailure, z, type Logger } from '@vaultkeeper/runtime';
import { globMatch } from './classify-secret.ts';
import { CONSUMER_KINDS, INJECTOR_ANNOTATIONS, type ConsumerKind, type FoundRef, type KubeObject } from './consumers.ts';
import { KubeError, type Kube } from './kube.ts';
import { listPages, type FetchPage, type ListPage } from './list-secrets.ts';

export { INJECTOR_ANNOTATIONS };

export interface UsageRef {
  /** The consumer's kind (`Pod`, `CronJob`, `Ingress`…), or the controller a marker names (`Argo CD`). */
  kind: string;
  /** The consumer's name (`namespace/name` when it lives in another namespace than the Secret). */
  name: string;
  /** How it refers to the Secret: env, envFrom, volume, imagePullSecrets, spec.tls secretName… */
  via: string;
  /** The stable id of the rule that recognised it (docs/secret-sweep.md, "In use"). */
  rule: string;
}

// A Secret mounted by a 500-pod DaemonSet needs naming a few of them, not all.
const MAX_REFS_PER_SECRET = 10;

export interface UsageEntry {
  /** References found (each consumer and way of referring counted once). */
  count: number;
  /** The first few of them. */
  refs: UsageRef[];
}

/** A consumer kind that could not be listed: Secrets of its scope are never deleted. */
export interface UnreadableKind {
  kind: string;
  /** The namespace whose list was refused; absent: the cluster-wide list. */
  namespace?: string;
  status: number;
  reason?: string;
}

/** A reference whose Secret is known by a pattern only (a templated StorageClass parameter, a ClusterIssuer). */
interface PatternRef {
  namespace: string;
  name: string;
  ref: UsageRef;
}

/**
 * Which Secrets anything in the cluster refers to. Built before the Secrets are listed, so
 * the Secrets can stream past page by page; it holds names only, bounded by the number of
 * references, not by the number of Secrets.
 */
export class UsageIndex {
  private readonly exact = new Map<string, UsageEntry>();
  private readonly patterns: PatternRef[] = [];
  private readonly injector = new Map<string, { pod: string; annotation: string }>();
  /** Objects read, per kind. */
  readonly objects: Record<string, number> = {};
  readonly unreadable: UnreadableKind[] = [];
  /** Kinds served by a CRD the cluster does not have. */
  readonly absent: string[] = [];

  get pods(): number {
    return this.objects.Pod ?? 0;
  }

  get serviceAccounts(): number {
    return this.objects.ServiceAccount ?? 0;
  }

  usedBy(namespace: string, name: string): UsageEntry | undefined {
    const found = this.exact.get(`${namespace}/${name}`);
    let entry = found;
    for (const p of this.patterns) {
      if (!globMatch(p.namespace, namespace) || !globMatch(p.name, name)) continue;
      entry ??= { count: 0, refs: [] };
      if (entry === found) entry = { count: found.count, refs: [...found.refs] };
      entry.count++;
      if (entry.refs.length < MAX_REFS_PER_SECRET) entry.refs.push(p.ref);
    }
    return entry;
  }

  /** The consumer kinds that could not be listed for this namespace (there, or cluster-wide). */
  unknownFor(namespace: string): string[] {
    return [...new Set(this.unreadable.filter((u) => u.namespace === undefined || u.namespace === namespace).map((u) => u.kind))];
  }

  injectorPodFor(namespace: string, name: string): { pod: string; annotation: string } | undefined {
    return this.injector.get(`${namespace}/${name}`);
  }

  /** Records what one object refers to. */
  addObject(kind: ConsumerKind, o: KubeObject): void {
    this.objects[kind.kind] = (this.objects[kind.kind] ?? 0) + 1;
    const own = o.metadata?.namespace ?? '';
    const name = o.metadata?.name ?? '';
    for (const r of kind.refs(o)) {
      this.add(kind, own, name, r);
      // The Vault agent injector's annotations, on a pod or a workload's pod template, make the
      // Secret the injector's (class managed), not a leftover.
      const injected = INJECTOR_ANNOTATIONS.find((a) => r.via.endsWith(`annotation ${a}`));
      if (injected) this.injector.set(`${r.namespace ?? own}/${r.name}`, { pod: kind.kind === 'Pod' ? name : `template of ${kind.kind} ${name}`, annotation: injected });
    }
  }

  private add(kind: ConsumerKind, own: string, consumer: string, r: FoundRef): void {
    const namespace = r.namespace ?? own;
    const ref: UsageRef = { kind: kind.kind, name: own && namespace !== own ? `${own}/${consumer}` : consumer, via: r.via, rule: kind.rule };
    if (namespace.includes('*') || r.name.includes('*')) this.addPattern({ namespace, name: r.name, ref });
    else this.addExact(`${namespace}/${r.name}`, [ref], 1);
  }

  private addPattern(p: PatternRef): void {
    if (!this.patterns.some((x) => x.namespace === p.namespace && x.name === p.name && sameRef(x.ref, p.ref))) this.patterns.push(p);
  }

  private addExact(key: string, refs: UsageRef[], count: number): void {
    const entry = this.exact.get(key) ?? { count: 0, refs: [] };
    let added = 0;
    for (const ref of refs) {
      if (entry.refs.some((x) => sameRef(x, ref))) continue;
      added++;
      if (entry.refs.length < MAX_REFS_PER_SECRET) entry.refs.push(ref);
    }
    // Beyond the refs kept, the other index counted what it did not keep.
    entry.count += added + Math.max(0, count - refs.length);
    this.exact.set(key, entry);
  }

  /** Takes in what another index (one complete list) found. */
  merge(other: UsageIndex): void {
    for (const [kind, n] of Object.entries(other.objects)) this.objects[kind] = (this.objects[kind] ?? 0) + n;
    for (const [key, e] of other.exact) this.addExact(key, e.refs, e.count);
    for (const p of other.patterns) this.addPattern(p);
    for (const [key, v] of other.injector) this.injector.set(key, v);
  }
}

const rawList = z.object({ items: z.array(z.record(z.string(), z.unknown())), metadata: z.object({ continue: z.string().optional() }).loose().optional() }).loose();

const sameRef = (a: UsageRef, b: UsageRef) => a.kind === b.kind && a.name === b.name && a.via === b.via;

/** The kinds this cluster serves, with the version to list each at; the rest are absent CRDs. */
async function discover(kube: Kube): Promise<{ served: Array<{ kind: ConsumerKind; version: string }>; absent: string[] }> {
  const served: Array<{ kind: ConsumerKind; version: string }> = [];
  const absent: string[] = [];
  const builtIn = CONSUMER_KINDS.filter((k) => !k.crd);
  for (const kind of builtIn) served.push({ kind, version: kind.versions[0]! });
  const crds = CONSUMER_KINDS.filter((k) => k.crd);
  const groups = await kube.call('discover API groups', (o) => kube.apis.getAPIVersions({}, o), { retry: true });
  const resources = new Map<string, Set<string>>();
  for (const kind of crds) {
    const group = groups.groups.find((g) => g.name === kind.group);
    const offered = new Set(group?.versions.map((v) => v.version) ?? []);
    let version: string | undefined;
    for (const v of kind.versions.filter((x) => offered.has(x))) {
      const key = `${kind.group}/${v}`;
      if (!resources.has(key)) {
        const list = await kube.call(`discover ${key}`, (o) => kube.custom.getAPIResources({ group: kind.group, version: v }, o), { retry: true });
        resources.set(key, new Set(list.resources.map((r) => r.name)));
      }
      if (resources.get(key)!.has(kind.plural)) {
        version = v;
        break;
      }
    }
    if (version) served.push({ kind, version });
    else absent.push(kind.kind);
  }
  return { served, absent };
}

/** One page of a kind's list, cluster-wide (`namespace` undefined) or in one namespace. */
function fetchPageOf(kube: Kube, kind: ConsumerKind, version: string, namespace: string | undefined): FetchPage<KubeObject> {
  const where = namespace ? ` in ${namespace}` : '';
  const op = `list ${kind.plural}${where}`;
  const cont = (c: string | undefined) => (c ? { _continue: c } : {});
  if (kind.group === '') {
    const core = kube.core;
    type CoreList = ListPage<KubeObject>;
    const calls: Record<string, { all: FetchPage<KubeObject>; one: (ns: string) => FetchPage<KubeObject> }> = {
      pods: {
        all: (limit, c) => kube.call(op, (o) => core.listPodForAllNamespaces({ limit, ...cont(c) }, o), { retry: true }) as Promise<CoreList>,
        one: (ns) => (limit, c) => kube.call(op, (o) => core.listNamespacedPod({ namespace: ns, limit, ...cont(c) }, o), { retry: true }) as Promise<CoreList>,
      },
      serviceaccounts: {
        all: (limit, c) => kube.call(op, (o) => core.listServiceAccountForAllNamespaces({ limit, ...cont(c) }, o), { retry: true }) as Promise<CoreList>,
        one: (ns) => (limit, c) => kube.call(op, (o) => core.listNamespacedServiceAccount({ namespace: ns, limit, ...cont(c) }, o), { retry: true }) as Promise<CoreList>,
      },
      replicationcontrollers: {
        all: (limit, c) => kube.call(op, (o) => core.listReplicationControllerForAllNamespaces({ limit, ...cont(c) }, o), { retry: true }) as Promise<CoreList>,
        one: (ns) => (limit, c) =>
          kube.call(op, (o) => core.listNamespacedReplicationController({ namespace: ns, limit, ...cont(c) }, o), { retry: true }) as Promise<CoreList>,
      },
      persistentvolumes: {
        all: (limit, c) => kube.call(op, (o) => core.listPersistentVolume({ limit, ...cont(c) }, o), { retry: true }) as Promise<CoreList>,
        one: () => {
          throw new Error('PersistentVolumes are cluster-scoped');
        },
      },
    };
    const call = calls[kind.plural];
    if (!call) throw new Error(`no core list for ${kind.plural}`);
    return namespace ? call.one(namespace) : call.all;
  }
  // Plain JSON, checked as a list; the continue token is `metadata.continue`. The items' fields
  // are read defensively by the rules (consumers.ts): an odd object names nothing.
  const raw = (p: Promise<unknown>): Promise<ListPage<KubeObject>> =>
    p.then((body) => {
      const b = rawList.safeParse(body);
      if (!b.success) throw new JobFailure(`${op}: the apiserver's answer is not a list`);
      return { items: b.data.items as KubeObject[], metadata: { _continue: b.data.metadata?.continue } };
    });
  const base = { group: kind.group, version, plural: kind.plural };
  return namespace
    ? (limit, c) => raw(kube.call(op, (o) => kube.custom.listNamespacedCustomObject({ ...base, namespace, limit, ...cont(c) }, o), { retry: true }))
    : (limit, c) => raw(kube.call(op, (o) => kube.custom.listClusterCustomObject({ ...base, limit, ...cont(c) }, o), { retry: true }));
}

/**
 * Lists every consumer kind the cluster serves (paginated, like the Secrets) into a UsageIndex:
 * namespaced kinds in each of `namespaces` (all of them: empty list), cluster-scoped kinds once,
 * and kinds that can name another namespace's Secret (`crossNamespace`: Ingress, Gateway) once
 * cluster-wide whatever the scope, since their objects outside `namespaces` may name a Secret
 * inside. A list the apiserver refuses (403) is recorded, not fatal: the Secrets of its scope
 * (for a cluster-wide list: every Secret) are then never deleted. The same function serves the
 * sweep and the re-check before deleting.
 */
export async function findUsage(kube: Kube, namespaces: string[], pageSize: number, log: Logger): Promise<UsageIndex> {
  const index = new UsageIndex();
  const { served, absent } = await discover(kube);
  index.absent.push(...absent);
  for (const { kind, version } of served) {
    const scopes: Array<string | undefined> = kind.namespaced && !kind.crossNamespace && namespaces.length ? namespaces : [undefined];
    for (const namespace of scopes) {
      // A list's references count once the list is complete: one that starts over (410) drops
      // its own. Only names are kept, never the page.
      let staged = new UsageIndex();
      try {
        for await (const page of listPages([fetchPageOf(kube, kind, version, namespace)], { operation: `list ${kind.plural}`, pageSize, log })) {
          if (page.restarted) staged = new UsageIndex();
          for (const o of page.items) staged.addObject(kind, o);
        }
      } catch (err) {
        if (!(err instanceof KubeError && (err.status === 403 || err.status === 404))) throw err;
        if (err.status === 404 && kind.crd) {
          // Its CRD went away since discovery.
          if (!index.absent.includes(kind.kind)) index.absent.push(kind.kind);
          continue;
        }
        index.unreadable.push({ kind: kind.kind, ...(namespace ? { namespace } : {}), status: err.status, ...(err.reason ? { reason: err.reason } : {}) });
        log.warn(
          { kind: kind.kind, namespace: namespace ?? 'all', status: err.status },
          `cannot list ${kind.plural}; no Secret of ${namespace ? `namespace ${namespace}` : 'the cluster'} will be deleted`,
        );
        continue;
      }
      index.merge(staged);
    }
  }
  return index;
}
