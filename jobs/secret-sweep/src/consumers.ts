/**
 * Every kind of object through which Kubernetes can tell that a Secret is used, with where in
 * it the Secret is named. The table is the one in docs/secret-sweep.md ("In use"): keep both in
 * step. Objects are read as plain JSON, so only the fields named here matter.
 */

/** One reference found in a consumer object. */
export interface FoundRef {
  /** The Secret's namespace: the object's own when unset; `*` any (the name decides). */
  namespace?: string;
  /** The Secret's name; `*` stands for a part the controller fills in later (`${pvc.name}`). */
  name: string;
  via: string;
}

export interface ConsumerKind {
  kind: string;
  /** '' for the core group. */
  group: string;
  /** Versions to use, best first; for a kind served by a CRD, discovery picks among them. */
  versions: string[];
  plural: string;
  namespaced: boolean;
  /**
   * A namespaced kind whose objects may name a Secret of another namespace (an ingress-nginx
   * `namespace/name` annotation, a Gateway certificateRef with a namespace). A sweep scoped to
   * some namespaces still lists it cluster-wide: a consumer outside the scope would be invisible.
   */
  crossNamespace?: boolean;
  /** Served by a CustomResourceDefinition: absent from a cluster is fine. */
  crd: boolean;
  /** The stable id of the rule, in the report's `usedBy.refs[].rule`. */
  rule: string;
  refs(obj: KubeObject): FoundRef[];
}

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> | undefined } | undefined;
  spec?: unknown;
  [field: string]: unknown;
}

/** Pod annotations by which the Vault agent injector is told to use a Secret of the pod's namespace. */
export const INJECTOR_ANNOTATIONS = ['vault.hashicorp.com/agent-extra-secret', 'vault.hashicorp.com/tls-secret'];

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** What a pod spec (of a pod, or of a workload's pod template) names, and its injector annotations. */
export function podSpecRefs(spec: unknown, annotations: Record<string, string> | undefined, where = ''): FoundRef[] {
  const out: FoundRef[] = [];
  const add = (name: unknown, via: string) => {
    const n = str(name);
    if (n) out.push({ name: n, via: `${where}${via}` });
  };
  for (const [annotation, value] of Object.entries(annotations ?? {})) {
    if (INJECTOR_ANNOTATIONS.includes(annotation)) add(value, `annotation ${annotation}`);
  }
  const s = obj(spec);
  if (!s) return out;
  for (const p of arr(s.imagePullSecrets)) add(obj(p)?.name, 'imagePullSecrets');
  for (const c of [...arr(s.initContainers), ...arr(s.containers), ...arr(s.ephemeralContainers)].map(obj)) {
    if (!c) continue;
    for (const e of arr(c.env).map(obj)) add(obj(obj(e?.valueFrom)?.secretKeyRef)?.name, `env ${String(e?.name)} (container ${String(c.name)})`);
    for (const e of arr(c.envFrom).map(obj)) add(obj(e?.secretRef)?.name, `envFrom (container ${String(c.name)})`);
  }
  for (const v of arr(s.volumes).map(obj)) {
    if (!v) continue;
    const vn = String(v.name);
    add(obj(v.secret)?.secretName, `volume ${vn}`);
    for (const src of arr(obj(v.projected)?.sources).map(obj)) add(obj(src?.secret)?.name, `projected volume ${vn}`);
    add(obj(obj(v.csi)?.nodePublishSecretRef)?.name, `csi volume ${vn} (nodePublishSecretRef)`);
    add(obj(v.azureFile)?.secretName, `azureFile volume ${vn}`);
    // Storage plugins (cephfs, rbd, iscsi, flexVolume, scaleIO, storageos…) name theirs `secretRef`.
    for (const [kind, source] of Object.entries(v)) add(obj(obj(source)?.secretRef)?.name, `${kind} volume ${vn} (secretRef)`);
  }
  return out;
}

const templateRefs = (template: unknown): FoundRef[] => {
  const t = obj(template);
  return podSpecRefs(t?.spec, obj(t?.metadata)?.annotations as Record<string, string> | undefined, 'pod template ');
};

/**
 * References an object makes by convention: `…SecretRef`/`secretRef` objects and
 * `credentialsRef` with a `name` (Flux sources, cert-manager issuers' ACME, Vault, Venafi and
 * DNS-solver credentials, a PersistentVolume's CSI and in-tree plugin secrets, with their
 * `namespace`) and `secretName` strings (cert-manager's CA issuer; azureFile with `secretNamespace`).
 */
export function conventionalSecretRefs(value: unknown, path: string, depth = 0): FoundRef[] {
  if (depth > 12) return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => conventionalSecretRefs(v, `${path}[${i}]`, depth + 1));
  const o = obj(value);
  if (!o) return [];
  const out: FoundRef[] = [];
  for (const [key, v] of Object.entries(o)) {
    const here = `${path}.${key}`;
    // A SecretReference (PersistentVolumes) names its namespace; a LocalObjectReference does not.
    const ns = (n: unknown) => (str(n) ? { namespace: str(n)! } : {});
    if ((/secretref$/i.test(key) || key === 'credentialsRef') && str(obj(v)?.name)) out.push({ name: str(obj(v)!.name)!, ...ns(obj(v)!.namespace), via: here });
    else if (key === 'secretName' && str(v)) out.push({ name: str(v)!, ...ns(o.secretNamespace), via: here });
    else out.push(...conventionalSecretRefs(v, here, depth + 1));
  }
  return out;
}

/** `${pvc.name}-stage` is filled in per volume: any name of that shape may be the one. */
const templated = (s: string) => s.replace(/\$\{[^}]*\}/g, '*');

/**
 * A StorageClass names Secrets in `*-secret-name` parameters (CSI: provisioner, controller
 * publish/expand, node stage/publish/expand) and, for in-tree plugins, `secretName`,
 * `adminSecretName`, `userSecretName`; each beside a `…-namespace`/`…Namespace` parameter.
 * Without one the Secret's namespace is the claim's, which may be any.
 */
export function storageClassRefs(parameters: Record<string, unknown> | undefined): FoundRef[] {
  const out: FoundRef[] = [];
  for (const [key, value] of Object.entries(parameters ?? {})) {
    const name = str(value);
    if (!name || !/secret-?name$/i.test(key)) continue;
    const nsKey = key.replace(/name$/i, (m) => (m[0] === 'N' ? 'Namespace' : 'namespace'));
    const namespace = str(parameters?.[nsKey]);
    out.push({ name: templated(name), namespace: namespace ? templated(namespace) : '*', via: `parameters ${key}` });
  }
  return out;
}

/** ingress-nginx annotations that name a Secret (`name` or `namespace/name`). */
const INGRESS_NGINX_SECRETS = ['nginx.ingress.kubernetes.io/auth-secret', 'nginx.ingress.kubernetes.io/auth-tls-secret', 'nginx.ingress.kubernetes.io/proxy-ssl-secret'];

function ingressRefs(o: KubeObject): FoundRef[] {
  const out: FoundRef[] = [];
  for (const t of arr(obj(o.spec)?.tls).map(obj)) {
    const name = str(t?.secretName);
    if (name) out.push({ name, via: 'spec.tls secretName' });
  }
  for (const a of INGRESS_NGINX_SECRETS) {
    const v = str(o.metadata?.annotations?.[a]);
    if (!v) continue;
    const slash = v.indexOf('/');
    out.push(slash < 0 ? { name: v, via: `annotation ${a}` } : { namespace: v.slice(0, slash), name: v.slice(slash + 1), via: `annotation ${a}` });
  }
  return out;
}

function gatewayRefs(o: KubeObject): FoundRef[] {
  const out: FoundRef[] = [];
  for (const l of arr(obj(o.spec)?.listeners).map(obj)) {
    for (const ref of arr(obj(l?.tls)?.certificateRefs).map(obj)) {
      // Group "" and kind Secret are the defaults (Gateway API SecretObjectReference).
      if (!ref || (str(ref.group) ?? '') !== '' || (str(ref.kind) ?? 'Secret') !== 'Secret' || !str(ref.name)) continue;
      out.push({ name: str(ref.name)!, ...(str(ref.namespace) ? { namespace: str(ref.namespace)! } : {}), via: `listener ${String(l?.name)} certificateRefs` });
    }
  }
  return out;
}

const workload = (kind: string, group: string, plural: string): ConsumerKind => ({
  kind,
  group,
  versions: ['v1'],
  plural,
  namespaced: true,
  crd: false,
  rule: 'in-use.pod-template',
  refs: (o) => templateRefs(obj(o.spec)?.template),
});

const fluxSource = (kind: string, plural: string, versions: string[]): ConsumerKind => ({
  kind,
  group: 'source.toolkit.fluxcd.io',
  versions,
  plural,
  namespaced: true,
  crd: true,
  rule: 'in-use.flux-source',
  refs: (o) => conventionalSecretRefs(o.spec, 'spec'),
});

export const CONSUMER_KINDS: ConsumerKind[] = [
  {
    kind: 'Pod',
    group: '',
    versions: ['v1'],
    plural: 'pods',
    namespaced: true,
    crd: false,
    rule: 'in-use.pod',
    refs: (o) => podSpecRefs(o.spec, o.metadata?.annotations),
  },
  {
    kind: 'ServiceAccount',
    group: '',
    versions: ['v1'],
    plural: 'serviceaccounts',
    namespaced: true,
    crd: false,
    rule: 'in-use.service-account',
    refs: (o) => [
      ...arr(o.imagePullSecrets).flatMap((s) => (str(obj(s)?.name) ? [{ name: str(obj(s)!.name)!, via: 'imagePullSecrets' }] : [])),
      // `secrets` may name another namespace, but the kubelet only ever used the SA's own.
      ...arr(o.secrets).flatMap((s) => (str(obj(s)?.name) ? [{ name: str(obj(s)!.name)!, ...(str(obj(s)!.namespace) ? { namespace: str(obj(s)!.namespace)! } : {}), via: 'secrets' }] : [])),
    ],
  },
  { ...workload('ReplicationController', '', 'replicationcontrollers') },
  workload('Deployment', 'apps', 'deployments'),
  workload('StatefulSet', 'apps', 'statefulsets'),
  workload('DaemonSet', 'apps', 'daemonsets'),
  workload('ReplicaSet', 'apps', 'replicasets'),
  workload('Job', 'batch', 'jobs'),
  { ...workload('CronJob', 'batch', 'cronjobs'), refs: (o) => templateRefs(obj(obj(obj(o.spec)?.jobTemplate)?.spec)?.template) },
  { kind: 'Ingress', group: 'networking.k8s.io', versions: ['v1'], plural: 'ingresses', namespaced: true, crossNamespace: true, crd: false, rule: 'in-use.ingress', refs: ingressRefs },
  {
    kind: 'StorageClass',
    group: 'storage.k8s.io',
    versions: ['v1'],
    plural: 'storageclasses',
    namespaced: false,
    crd: false,
    rule: 'in-use.storage-class',
    refs: (o) => storageClassRefs(obj(o.parameters)),
  },
  {
    kind: 'PersistentVolume',
    group: '',
    versions: ['v1'],
    plural: 'persistentvolumes',
    namespaced: false,
    crd: false,
    rule: 'in-use.persistent-volume',
    // A provisioned volume keeps the node-stage/publish secrets its StorageClass named, and
    // needs them at every mount, also once the StorageClass is gone. Without a namespace: any.
    refs: (o) => conventionalSecretRefs(o.spec, 'spec').map((r) => ({ ...r, namespace: r.namespace ?? '*' })),
  },
  {
    kind: 'Gateway',
    group: 'gateway.networking.k8s.io',
    versions: ['v1', 'v1beta1'],
    plural: 'gateways',
    namespaced: true,
    crossNamespace: true,
    crd: true,
    rule: 'in-use.gateway',
    refs: gatewayRefs,
  },
  fluxSource('GitRepository', 'gitrepositories', ['v1', 'v1beta2']),
  fluxSource('HelmRepository', 'helmrepositories', ['v1', 'v1beta2']),
  fluxSource('OCIRepository', 'ocirepositories', ['v1', 'v1beta2']),
  fluxSource('Bucket', 'buckets', ['v1', 'v1beta2']),
  {
    kind: 'Issuer',
    group: 'cert-manager.io',
    versions: ['v1'],
    plural: 'issuers',
    namespaced: true,
    crd: true,
    rule: 'in-use.cert-manager-issuer',
    refs: (o) => conventionalSecretRefs(o.spec, 'spec'),
  },
  {
    kind: 'ClusterIssuer',
    group: 'cert-manager.io',
    versions: ['v1'],
    plural: 'clusterissuers',
    namespaced: false,
    crd: true,
    rule: 'in-use.cert-manager-issuer',
    // Its Secrets sit in cert-manager's "cluster resource namespace", a controller flag the job
    // cannot see (default cert-manager): the name counts in every namespace.
    refs: (o) => conventionalSecretRefs(o.spec, 'spec').map((r) => ({ ...r, namespace: '*' })),
  },
];

/** Secrets a controller reads through the API, recognised by a marker on the Secret itself. */
export function markerRefs(labels: Record<string, string> | undefined): Array<{ kind: string; name: string; via: string; rule: string }> {
  const type = labels?.['argocd.argoproj.io/secret-type'];
  return type ? [{ kind: 'Argo CD', name: type, via: `label argocd.argoproj.io/secret-type=${type}`, rule: 'in-use.argocd' }] : [];
}
