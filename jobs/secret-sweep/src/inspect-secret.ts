import type { V1Secret } from '@kubernetes/client-node';
import { classifySecret, type ClassifyContext } from './classify-secret.ts';
import { decodeHelmRelease, HelmDecodeError } from './helm-release.ts';
import { LAST_APPLIED, lastAppliedCopy } from './last-applied.ts';
import type { SecretEntry } from './report.ts';
import { markerRefs } from './consumers.ts';
import type { UsageEntry, UsageIndex } from './find-usage.ts';
import type { MigrationResult, VaultIndex } from './vault-index.ts';

export interface InspectContext {
  classify: ClassifyContext;
  usage: UsageIndex;
  index: VaultIndex;
  helm: { minValueLength: number; maxReleaseBytes: number };
  /** `namespace/name` → the logical KV path the operator mapped the Secret to. */
  mappings: Map<string, { logical: string }>;
}

export interface Inspection {
  entry: SecretEntry;
  /** Migrated, unused, owned by nothing: what --delete-migrated may remove. */
  deletable: boolean;
}

// A release whose every value sits in Vault would otherwise list hundreds of places.
const MAX_HELM_LOCATIONS = 50;

/**
 * Everything the sweep says about one Secret. Values are decoded here, compared with the Vault
 * index by keyed fingerprint, and dropped: the entry holds names, paths and counts only.
 */
export function inspectSecret(secret: V1Secret, ctx: InspectContext): Inspection {
  const meta = secret.metadata ?? {};
  const namespace = meta.namespace ?? '';
  const name = meta.name ?? '';
  const c = classifySecret(secret, ctx.classify);
  const entry: SecretEntry = { namespace, name, type: secret.type ?? 'Opaque', class: c.class, rule: c.rule, reason: c.reason };
  const data = secret.data ?? {};
  let deletable = false;

  if (c.class === 'leftover') {
    const values = Object.entries(data).map(([key, b64]) => ({ key, bytes: Buffer.from(b64, 'base64') }));
    const vault = ctx.index.compare(values, ctx.mappings.get(`${namespace}/${name}`)?.logical);
    const used = usedBy(ctx.usage.usedBy(namespace, name), meta.labels);
    const unknown = ctx.usage.unknownFor(namespace);
    entry.keys = Object.keys(data);
    entry.vault = vault;
    entry.inUse = used !== undefined;
    if (used) entry.usedBy = used;
    if (unknown.length) entry.usageUnknown = unknown;
    const owners = meta.ownerReferences ?? [];
    deletable = vault.status === 'migrated' && !used && owners.length === 0 && unknown.length === 0;
    if (deletable) entry.deletable = true;
    entry.advice = advise(vault, used?.refs.map((r) => `${r.kind} ${r.name}`), owners.map((o) => `${o.kind} ${o.name}`), unknown);
  }

  // Any class: a managed TLS Secret first created with `kubectl apply` keeps its first key here.
  const copy = lastAppliedCopy(meta.annotations);
  if (copy === 'unparseable') entry.annotationCopy = { unparseable: true };
  else if (copy) {
    const current = new Set(Object.values(data).map((b64) => ctx.index.fp.of(Buffer.from(b64, 'base64'))));
    const vault = ctx.index.compare(copy.values);
    entry.annotationCopy = {
      dataKeys: copy.dataKeys,
      stringDataKeys: copy.stringDataKeys,
      differsFromData: copy.values.some((v) => !current.has(ctx.index.fp.of(v.bytes))),
      vault: { status: vault.status, ...(vault.path ? { path: vault.path } : {}), missingKeys: vault.missingKeys },
      advice: `the ${LAST_APPLIED} annotation holds ${copy.values.length} value(s)${copy.stringDataKeys.length ? ', stringData in plaintext' : ''}: remove the annotation`,
    };
  }

  if (secret.type === 'helm.sh/release.v1' && typeof data.release === 'string') {
    try {
      const rel = decodeHelmRelease(data.release, { minLength: ctx.helm.minValueLength, maxBytes: ctx.helm.maxReleaseBytes });
      const inVault: Array<{ where: string; path: string; field: string }> = [];
      let count = 0;
      for (const v of rel.values) {
        // A common literal of a release (`enabled`, `localhost`) says nothing about Vault.
        if (ctx.index.isWeak(v.bytes ?? v.text!)) continue;
        const loc = (v.bytes ? ctx.index.locate(v.bytes) : ctx.index.locateText(v.text!))[0];
        if (!loc) continue;
        count++;
        if (inVault.length < MAX_HELM_LOCATIONS) inVault.push({ where: v.where, path: loc.path, field: loc.field });
      }
      entry.helmRelease = { ...rel.info, valuesInVault: count, locations: inVault, ...(rel.unparsed.length ? { unparsed: rel.unparsed } : {}) };
      if (count > 0) {
        const where = inVault.slice(0, 3).map((l) => `${l.where} (${l.path})`);
        entry.advice =
          `Helm keeps ${count} value(s) now in Vault in ${rel.info.release} revision ${rel.info.revision} (${rel.info.status}): ` +
          `${where.join(', ')}${count > where.length ? ', …' : ''}; rotate them, or let old revisions go (helm --history-max)`;
      }
    } catch (err) {
      if (!(err instanceof HelmDecodeError)) throw err;
      entry.helmRelease = { error: err.message };
    }
  }
  return { entry, deletable };
}

/** Who uses it: the consumers found in the cluster, and a controller's marker on the Secret itself. */
function usedBy(found: UsageEntry | undefined, labels: Record<string, string> | undefined): UsageEntry | undefined {
  const markers = markerRefs(labels);
  if (markers.length === 0) return found;
  return { count: (found?.count ?? 0) + markers.length, refs: [...markers, ...(found?.refs ?? [])].slice(0, 10) };
}

function advise(vault: MigrationResult, usedBy: string[] | undefined, owners: string[], unknown: string[]): string {
  const users = usedBy?.length ? usedBy.join(', ') : undefined;
  const at = vault.path ? ` at ${vault.path}` : '';
  const where = () => vault.found.map((f) => `${f.key} at ${f.path}`).join(', ');
  switch (vault.status) {
    case 'migrated':
      if (users) return `in Vault${at}, but still used by ${users}: the app still reads the old Secret; move it to Vault, then delete`;
      if (owners.length) return `in Vault${at}, but owned by ${owners.join(', ')}: its owner may recreate it; not deleted`;
      if (unknown.length) return `in Vault${at}, but ${unknown.join(', ')} could not be listed in this namespace, so it may be in use: not deleted`;
      return `in Vault${at} and unused: safe to delete (--delete-migrated backs it up first)`;
    case 'partly-migrated':
      if (vault.missingKeys.length === 0) return `its values are in Vault, but no one path holds them all: ${where()}${users ? `; used by ${users}` : ''}`;
      return `partly in Vault; missing: ${vault.missingKeys.join(', ')}${vault.found.length ? `; seen: ${where()}` : ''}${users ? `; used by ${users}` : ''}`;
    case 'unproven':
      return `holds only short or common values (${vault.weakKeys.join(', ')}): finding them in Vault (${where()}) proves nothing; map it (vaultKv.mappings) if it moved${users ? `; used by ${users}` : ''}`;
    case 'not-in-vault':
      return `not in Vault${vault.mappedTo ? ` at ${vault.mappedTo} (mapped)` : ''}: migrate it before deleting${users ? `; used by ${users}` : ''}`;
    default:
      return 'holds no non-empty value';
  }
}
