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

/** A Gateway API SecretObjectReference: group "" and kind Secret are the defaults. */
function secretObjectRef(ref: Json | undefined, via: string): FoundRef[] {
  if (!ref || (str(ref.group) ?? '') !== '' || (str(ref.kind) ?? 'Secret') !== 'Secret' || !str(ref.name)) return [];
  return [{ name: str(ref.name)!, ...(str(ref.namespace) ? { namespace: str(ref.namespace)! } : {}), via }];
}

/**
 * Any `…certificateRef` / `…certificateRefs` elsewhere in a Gateway's spec: backend TLS
 * (`spec.tls.backend.clientCertificateRef`, earlier `spec.backendTLS.clientCertificateRef`) and
 * client validation (`caCertificateRefs`, of kind Secret only: they default to nothing).
 */
function certificateRefsIn(value: unknown, path: string, depth = 0): FoundRef[] {
  if (depth > 8) return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => certificateRefsIn(v, `${path}[${i}]`, depth + 1));
  const o = obj(value);
  if (!o) return [];
  return Object.entries(o).flatMap(([key, v]) => {
    const here = `${path}.${key}`;
    if (/certificateRefs$/i.test(key)) return arr(v).flatMap((r) => (/^ca/i.test(key) && !str(obj(r)?.kind) ? [] : secretObjectRef(obj(r), here)));
    if (/certificateRef$/i.test(key)) return secretObjectRef(obj(v), here);
    return certificateRefsIn(v, here, depth + 1);
  });
}

function gatewayRefs(o: KubeObject): FoundRef[] {
  const out: FoundRef[] = [];
  const spec = obj(o.spec);
  for (const l of arr(spec?.listeners).map(obj)) {
    for (const ref of arr(obj(l?.tls)?.certificateRefs).map(obj)) out.push(...secretObjectRef(ref, `listener ${String(l?.name)} certificateRefs`));
    const { certificateRefs: _, ...rest } = obj(l?.tls) ?? {};
    out.push(...certificateRefsIn(rest, `listener ${String(l?.name)} tls`));
  }
  const { listeners: _l, ...rest } = spec ?? {};
  out.push(...certificateRefsIn(rest, 'spec'));
  return out;
}

/**
 * An Istio Gateway's `servers[].tls.credentialName` (and `credentialNames`): a Secret of the
 * namespace of the gateway workload the selector picks, which the job cannot tell, so any
 * namespace; `<namespace>/<name>` and a `kubernetes://` style prefix are read as such.
 */
function istioGatewayRefs(o: KubeObject): FoundRef[] {
  const out: FoundRef[] = [];
  for (const server of arr(obj(o.spec)?.servers).map(obj)) {
    const tls = obj(server?.tls);
    for (const raw of [tls?.credentialName, ...arr(tls?.credentialNames)]) {
      const v = str(raw)?.replace(/^[a-z-]+:\/\//, '');
      if (!v) continue;
      const slash = v.indexOf('/');
      out.push(slash < 0 ? { namespace: '*', name: v, via: 'servers tls credentialName' } : { namespace: v.slice(0, slash), name: v.slice(slash + 1), via: 'servers tls credentialName' });
    }
  }
  return out;
}

/** External Secrets stores: every `…SecretRef` of the provider's auth, and a `caProvider` of type Secret. */
function secretStoreRefs(spec: unknown): FoundRef[] {
  const out = conventionalSecretRefs(spec, 'spec');
  const walk = (v: unknown, path: string, depth: number): void => {
    if (depth > 8) return;
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${path}[${i}]`, depth + 1));
    const o = obj(v);
    if (!o) return;
    for (const [key, x] of Object.entries(o)) {
      const ca = obj(x);
      if (key === 'caProvider' && ca && str(ca.type) === 'Secret' && str(ca.name)) out.push({ name: str(ca.name)!, ...(str(ca.namespace) ? { namespace: str(ca.namespace)! } : {}), via: `${path}.caProvider` });
      else walk(x, `${path}.${key}`, depth + 1);
    }
  };
  walk(spec, 'spec', 0);
  return out;
}

/** Flux HelmRelease `valuesFrom[]` of kind Secret, besides the conventional `…SecretRef`s (`kubeConfig.secretRef`). */
function helmReleaseRefs(o: KubeObject): FoundRef[] {
  const valuesFrom = arr(obj(o.spec)?.valuesFrom)
    .map(obj)
    .flatMap((v, i) => (v && str(v.kind) === 'Secret' && str(v.name) ? [{ name: str(v.name)!, via: `spec.valuesFrom[${i}]` }] : []));
  return [...valuesFrom, ...conventionalSecretRefs(obj(o.spec), 'spec')];
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

/** A Flux object other than a source (Kustomization, HelmRelease, notification, image automation). */
const flux = (kind: string, group: string, plural: string, versions: string[], refs: (o: KubeObject) => FoundRef[] = (o) => conventionalSecretRefs(o.spec, 'spec')): ConsumerKind => ({
  kind,
  group,
  versions,
  plural,
  namespaced: true,
  crd: true,
  rule: 'in-use.flux',
  refs,
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
  // Kustomization `decryption.secretRef` (the SOPS key), `kubeConfig.secretRef`; HelmRelease
  // `valuesFrom` and `kubeConfig.secretRef`; Provider/Receiver `secretRef`, `certSecretRef`,
  // `proxySecretRef`; ImageRepository `secretRef`, `certSecretRef`, `proxySecretRef`.
  flux('Kustomization', 'kustomize.toolkit.fluxcd.io', 'kustomizations', ['v1', 'v1beta2']),
  flux('HelmRelease', 'helm.toolkit.fluxcd.io', 'helmreleases', ['v2', 'v2beta2'], helmReleaseRefs),
  flux('Provider', 'notification.toolkit.fluxcd.io', 'providers', ['v1beta3', 'v1beta2']),
  flux('Receiver', 'notification.toolkit.fluxcd.io', 'receivers', ['v1', 'v1beta2']),
  flux('ImageRepository', 'image.toolkit.fluxcd.io', 'imagerepositories', ['v1', 'v1beta2']),
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
    kind: 'Certificate',
    group: 'cert-manager.io',
    versions: ['v1'],
    plural: 'certificates',
    namespaced: true,
    crd: true,
    rule: 'in-use.cert-manager-certificate',
    // `keystores.pkcs12/jks.passwordSecretRef`, and `secretName`: the Secret it issues into.
    refs: (o) => conventionalSecretRefs(o.spec, 'spec'),
  },
  {
    kind: 'SecretStore',
    group: 'external-secrets.io',
    versions: ['v1', 'v1beta1'],
    plural: 'secretstores',
    namespaced: true,
    crd: true,
    rule: 'in-use.external-secrets-store',
    refs: (o) => secretStoreRefs(o.spec),
  },
  {
    kind: 'ClusterSecretStore',
    group: 'external-secrets.io',
    versions: ['v1', 'v1beta1'],
    plural: 'clustersecretstores',
    namespaced: false,
    crd: true,
    rule: 'in-use.external-secrets-store',
    // A ref without a namespace is read in each ExternalSecret's namespace: any.
    refs: (o) => secretStoreRefs(o.spec).map((r) => ({ ...r, namespace: r.namespace ?? '*' })),
  },
  {
    kind: 'Istio Gateway',
    group: 'networking.istio.io',
    versions: ['v1', 'v1beta1', 'v1alpha3'],
    plural: 'gateways',
    namespaced: true,
    // Its Secret is in the gateway workload's namespace, not the Gateway's: listed everywhere.
    crossNamespace: true,
    crd: true,
    rule: 'in-use.istio-gateway',
    refs: istioGatewayRefs,
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
