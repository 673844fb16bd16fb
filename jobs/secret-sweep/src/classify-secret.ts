/** The fields of a Secret that decide its class (a V1Secret satisfies it). */
export interface SecretMeta {
  metadata?: {
    name?: string | undefined;
    namespace?: string | undefined;
    labels?: Record<string, string> | undefined;
    annotations?: Record<string, string> | undefined;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string }> | undefined;
  } | undefined;
  type?: string | undefined;
}

export type SecretClass = 'system' | 'managed' | 'ignored' | 'leftover';
export const SECRET_CLASSES: SecretClass[] = ['system', 'managed', 'ignored', 'leftover'];

export interface Classification {
  class: SecretClass;
  /** Stable id of the rule that decided, e.g. `managed.cert-manager`; the JSON report's contract. */
  rule: string;
  /** The marker that matched, for a person. Names labels, annotations and owners; never values of data. */
  reason: string;
}

export interface IgnoreRules {
  namespaces: string[];
  names: string[];
  labels: string[];
  annotation: string;
}

export interface ClassifyContext {
  ignore: IgnoreRules;
  /** The pod whose Vault agent injector annotations name this Secret, if one does. */
  injectorPodFor(namespace: string, name: string): { pod: string; annotation: string } | undefined;
}

/** Secret types the cluster itself writes and reads. */
const SYSTEM_TYPES: Record<string, { rule: string; what: string }> = {
  'kubernetes.io/service-account-token': { rule: 'system.service-account-token', what: 'service-account token' },
  'bootstrap.kubernetes.io/token': { rule: 'system.bootstrap-token', what: 'bootstrap token' },
  // Helm 3 stores each release revision as a Secret of this type (pkg/storage/driver/secrets.go).
  'helm.sh/release.v1': { rule: 'system.helm-release', what: 'Helm release record' },
};

interface OwnerMarker {
  kind: string;
  /** Exact apiVersion, or a group (`external-secrets.io/`) that any version of matches. */
  apiVersion: string;
}

/**
 * Controllers that keep a Secret in step with a source of their own: deleting such a Secret
 * achieves nothing (it comes back) or breaks the controller. Each is recognised by the markers
 * it writes itself; an unknown owner does not make a Secret managed.
 */
const CONTROLLERS: Array<{
  rule: string;
  name: string;
  owners?: OwnerMarker[];
  labels?: Array<[string, string | null]>;
  annotations?: Array<[string, string | null]>;
}> = [
  {
    rule: 'managed.sealed-secrets',
    name: 'Sealed Secrets',
    owners: [{ kind: 'SealedSecret', apiVersion: 'bitnami.com/v1alpha1' }],
    annotations: [['sealedsecrets.bitnami.com/managed', 'true']],
    // The controller's own sealing keys.
    labels: [['sealedsecrets.bitnami.com/sealed-secrets-key', null]],
  },
  {
    rule: 'managed.cert-manager',
    name: 'cert-manager',
    owners: [{ kind: 'Certificate', apiVersion: 'cert-manager.io/' }],
    annotations: [['cert-manager.io/certificate-name', null]],
    labels: [['controller.cert-manager.io/fao', 'true']],
  },
  {
    rule: 'managed.external-secrets',
    name: 'External Secrets Operator',
    owners: [{ kind: 'ExternalSecret', apiVersion: 'external-secrets.io/' }],
    labels: [['reconcile.external-secrets.io/managed', 'true']],
  },
  {
    rule: 'managed.vault-secrets-operator',
    name: 'Vault Secrets Operator',
    labels: [['app.kubernetes.io/managed-by', 'hashicorp-vso']],
  },
  {
    rule: 'managed.secrets-store-csi',
    name: 'Secrets Store CSI driver',
    owners: [{ kind: 'SecretProviderClassPodStatus', apiVersion: 'secrets-store.csi.x-k8s.io/' }],
    labels: [['secrets-store.csi.k8s.io/managed', 'true']],
  },
];

export function classifySecret(secret: SecretMeta, ctx: ClassifyContext): Classification {
  const meta = secret.metadata ?? {};
  const namespace = meta.namespace ?? '';
  const name = meta.name ?? '';
  const labels = meta.labels ?? {};
  const annotations = meta.annotations ?? {};

  const system = secret.type ? SYSTEM_TYPES[secret.type] : undefined;
  if (system) return { class: 'system', rule: system.rule, reason: `${system.what} (type ${secret.type})` };

  for (const c of CONTROLLERS) {
    for (const o of c.owners ?? []) {
      const ref = meta.ownerReferences?.find(
        (r) => r.kind === o.kind && (o.apiVersion.endsWith('/') ? r.apiVersion.startsWith(o.apiVersion) : r.apiVersion === o.apiVersion),
      );
      if (ref) return { class: 'managed', rule: c.rule, reason: `${c.name}: owned by ${ref.kind} ${ref.name} (${ref.apiVersion})` };
    }
    for (const [key, want] of c.labels ?? []) {
      const have = labels[key];
      if (have !== undefined && (want === null || have === want)) return { class: 'managed', rule: c.rule, reason: `${c.name}: label ${key}=${have}` };
    }
    for (const [key, want] of c.annotations ?? []) {
      const have = annotations[key];
      if (have !== undefined && (want === null || have === want)) return { class: 'managed', rule: c.rule, reason: `${c.name}: annotation ${key}` };
    }
  }
  const injector = ctx.injectorPodFor(namespace, name);
  if (injector) {
    return {
      class: 'managed',
      rule: 'managed.vault-agent-injector',
      reason: `Vault agent injector: named by ${injector.annotation} on pod ${injector.pod}`,
    };
  }

  const ignored = ignoreReason(namespace, name, labels, annotations, ctx.ignore);
  if (ignored) return { class: 'ignored', ...ignored };

  return { class: 'leftover', rule: 'leftover', reason: 'no controller marker and no ignore rule' };
}

function ignoreReason(
  namespace: string,
  name: string,
  labels: Record<string, string>,
  annotations: Record<string, string>,
  rules: IgnoreRules,
): { rule: string; reason: string } | undefined {
  if (annotations[rules.annotation]?.toLowerCase() === 'true') return { rule: 'ignored.annotation', reason: `annotation ${rules.annotation}=true` };
  const ns = rules.namespaces.find((p) => globMatch(p, namespace));
  if (ns) return { rule: 'ignored.namespace', reason: `namespace matches ${ns}` };
  const n = rules.names.find((p) => (p.includes('/') ? globMatch(p, `${namespace}/${name}`) : globMatch(p, name)));
  if (n) return { rule: 'ignored.name', reason: `name matches ${n}` };
  for (const rule of rules.labels) {
    const eq = rule.indexOf('=');
    const key = eq < 0 ? rule : rule.slice(0, eq);
    const have = labels[key];
    if (have !== undefined && (eq < 0 || have === rule.slice(eq + 1))) return { rule: 'ignored.label', reason: `label matches ${rule}` };
  }
  return undefined;
}

const globCache = new Map<string, RegExp>();

/** `*` any run of characters, `?` one character; the rest literal. */
export function globMatch(pattern: string, text: string): boolean {
  let re = globCache.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    globCache.set(pattern, re);
  }
  return re.test(text);
}
