import type { V1Secret } from '@kubernetes/client-node';
import { z } from '@vaultkeeper/runtime';

export const BACKUP_FORMAT = 'vaultkeeper.io/secret-backup/v1';

/**
 * A Secret as kept in Vault KV before it is deleted: everything needed to put it back as it was
 * (data, type, labels, annotations, immutability), plus the identity it had (uid,
 * resourceVersion) for the record. `data` stays base64, exactly as the apiserver returned it.
 */
export const backupDoc = z.object({
  format: z.literal(BACKUP_FORMAT),
  namespace: z.string(),
  name: z.string(),
  uid: z.string(),
  resourceVersion: z.string(),
  type: z.string(),
  immutable: z.boolean().optional(),
  labels: z.record(z.string(), z.string()).default({}),
  annotations: z.record(z.string(), z.string()).default({}),
  data: z.record(z.string(), z.string()).default({}),
  backedUpAt: z.string(),
});
export type BackupDoc = z.infer<typeof backupDoc>;

export interface BackupLocation {
  mount: string;
  path: string;
}

/** KV v2 API path of a Secret's backup, and the logical path a person types (`bao kv get`). */
export function backupPaths(loc: BackupLocation, namespace: string, name: string): { api: string; metadata: string; logical: string } {
  const rel = `${loc.path.replace(/^\/+|\/+$/g, '')}/${namespace}/${name}`;
  return { api: `${loc.mount}/data/${rel}`, metadata: `${loc.mount}/metadata/${rel}`, logical: `${loc.mount}/${rel}` };
}

export function toBackup(secret: V1Secret, now = new Date()): BackupDoc {
  const m = secret.metadata ?? {};
  return {
    format: BACKUP_FORMAT,
    namespace: m.namespace ?? '',
    name: m.name ?? '',
    uid: m.uid ?? '',
    resourceVersion: m.resourceVersion ?? '',
    type: secret.type ?? 'Opaque',
    ...(secret.immutable !== undefined ? { immutable: secret.immutable } : {}),
    labels: { ...(m.labels ?? {}) },
    annotations: { ...(m.annotations ?? {}) },
    data: { ...(secret.data ?? {}) },
    backedUpAt: now.toISOString(),
  };
}

/** The Secret to create on restore: server-set fields (uid, resourceVersion, timestamps) left out. */
export function fromBackup(doc: BackupDoc): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      namespace: doc.namespace,
      name: doc.name,
      ...(Object.keys(doc.labels).length ? { labels: doc.labels } : {}),
      ...(Object.keys(doc.annotations).length ? { annotations: doc.annotations } : {}),
    },
    type: doc.type,
    ...(doc.immutable !== undefined ? { immutable: doc.immutable } : {}),
    data: doc.data,
  };
}

/** Same Secret content (what a restore would recreate), whatever the key order. */
export function sameContent(a: BackupDoc, b: BackupDoc): boolean {
  const pick = (d: BackupDoc) => canonical([d.namespace, d.name, d.uid, d.resourceVersion, d.type, d.immutable ?? null, d.labels, d.annotations, d.data]);
  return pick(a) === pick(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
