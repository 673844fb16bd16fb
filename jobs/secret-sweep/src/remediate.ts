import type { V1Secret } from '@kubernetes/client-node';
import { describeError, withRetry, z, type Logger } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { backupDoc, backupPaths, sameContent, toBackup, type BackupLocation } from './backup.ts';
import { findUsage } from './find-usage.ts';
import { KubeError, type Kube } from './kube.ts';
import type { RemediationAction } from './report.ts';

/** A Secret the sweep found migrated and unused, as it was when listed. */
export interface Candidate {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
}

export interface RemediateOptions {
  kube: Kube;
  vault: VaultClient;
  backup: BackupLocation;
  maxDeletes: number;
  pageSize: number;
  /** The sweep's scope (empty: the cluster): the re-check reads exactly what the sweep read. */
  namespaces: string[];
  dryRun: boolean;
  log: Logger;
  signal?: AbortSignal;
}

export interface RemediationSummary {
  /** What happened to each candidate, by `namespace/name`. */
  actions: Map<string, RemediationAction>;
  /** Dry run: what would have been deleted. */
  planned: number;
  deleted: number;
  refused: number;
  failed: number;
  pending: number;
}

const kvWritten = z.object({ version: z.number() }).loose();
const kvRead = z.object({ data: z.unknown() }).loose();

/**
 * Deletes the candidates one at a time, never losing one: for each, read it again, refuse if it
 * changed since it was classified, write a complete backup to Vault KV, read the backup back
 * and compare, and only then delete with a precondition on uid and resourceVersion, so that a
 * Secret written in between is refused by the apiserver itself (409) instead of deleted.
 */
export async function remediate(candidates: Candidate[], opts: RemediateOptions): Promise<RemediationSummary> {
  const summary: RemediationSummary = { actions: new Map(), planned: 0, deleted: 0, refused: 0, failed: 0, pending: 0 };
  const set = (c: Candidate, action: RemediationAction) => {
    summary.actions.set(`${c.namespace}/${c.name}`, action);
    if (action.action === 'would-delete') summary.planned++;
    else if (action.action === 'deleted') summary.deleted++;
    else if (action.action === 'refused') summary.refused++;
    else if (action.action === 'failed') summary.failed++;
    const level = action.action === 'failed' ? 'error' : action.action === 'refused' ? 'warn' : 'info';
    // The name in clear: an operator must be able to tell what was deleted (a name is no value;
    // `secret` is one of the logger's redacted fields, so the field is `secretName`).
    opts.log[level]({ secretName: `${c.namespace}/${c.name}`, ...action }, `remediation: ${action.action}`);
  };

  const now = [...candidates].sort((a, b) => (a.namespace === b.namespace ? (a.name < b.name ? -1 : 1) : a.namespace < b.namespace ? -1 : 1));
  const batch = now.slice(0, opts.maxDeletes);
  for (const c of now.slice(opts.maxDeletes)) {
    summary.actions.set(`${c.namespace}/${c.name}`, { action: 'skipped', reason: `over remediation.maxDeletes (${opts.maxDeletes}); left for the next run` });
    summary.pending++;
  }
  if (batch.length === 0) return summary;

  // Usage was read before the Secrets were listed; a consumer created since may use one now.
  // Every consumer kind again, as the sweep read them: namespaced kinds in its namespaces, and
  // cluster-wide the cluster-scoped kinds (StorageClass, ClusterIssuer…) and the kinds that can
  // name another namespace's Secret (Ingress, Gateway), wherever their objects live.
  const usage = await findUsage(opts.kube, opts.namespaces, opts.pageSize, opts.log);

  for (const c of batch) {
    if (opts.signal?.aborted) {
      summary.actions.set(`${c.namespace}/${c.name}`, { action: 'skipped', reason: 'run stopped before this one' });
      summary.pending++;
      continue;
    }
    const paths = backupPaths(opts.backup, c.namespace, c.name);
    const users = usage.usedBy(c.namespace, c.name);
    if (users) {
      set(c, { action: 'refused', reason: `now used by ${users.refs.map((r) => `${r.kind} ${r.name}`).join(', ')}` });
      continue;
    }
    const unknown = usage.unknownFor(c.namespace);
    if (unknown.length) {
      set(c, { action: 'refused', reason: `could not list ${unknown.join(', ')} to check it is unused` });
      continue;
    }
    if (opts.dryRun) {
      set(c, { action: 'would-delete', backupPath: paths.logical });
      continue;
    }
    try {
      set(c, await removeOne(c, paths, opts));
    } catch (err) {
      set(c, { action: 'failed', reason: String(describeError(err).message), backupPath: paths.logical });
    }
  }
  return summary;
}

async function removeOne(c: Candidate, paths: ReturnType<typeof backupPaths>, opts: RemediateOptions): Promise<RemediationAction> {
  const { kube, vault } = opts;
  let fresh: V1Secret;
  try {
    fresh = await kube.call(`read secret ${c.namespace}/${c.name}`, (o) => kube.core.readNamespacedSecret({ namespace: c.namespace, name: c.name }, o), {
      retry: true,
    });
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) return { action: 'skipped', reason: 'already gone' };
    throw err;
  }
  const rv = fresh.metadata?.resourceVersion;
  if (fresh.metadata?.uid !== c.uid || rv !== c.resourceVersion) {
    return { action: 'refused', reason: `changed since it was classified (resourceVersion ${c.resourceVersion} → ${rv}); not deleted` };
  }

  const doc = toBackup(fresh);
  const signal = opts.signal ? { signal: opts.signal } : {};
  // OpenBao standbys answer reads from their own copy of Raft, which may not have applied a
  // write the active node just made (https://openbao.org/docs/concepts/consistency/): the
  // read-back that decides whether a delete is safe must come from the active node.
  await vault.findActiveNode(signal);
  // Same body twice is the same backup: safe to retry. Each write is a new KV version, so an
  // earlier backup of a Secret of the same name stays readable as an older version.
  const written = await vault.write(paths.api, { data: doc }, kvWritten, { idempotent: true, ...signal });
  if (!written) throw new Error(`backup write to ${paths.logical} returned no version`);
  // A leadership change between write and read can still put the read on a node that lags.
  const back = await withRetry(() => vault.read(`${paths.api}?version=${written.version}`, kvRead, signal), {
    deadlineMs: 10_000,
    maxAttempts: 5,
    ...signal,
    retryable: (err) => err instanceof VaultError && err.status === 404,
  });
  const parsed = backupDoc.safeParse(back.data);
  if (!parsed.success || !sameContent(parsed.data, doc)) {
    return { action: 'failed', reason: 'the backup did not read back identical; not deleted', backupPath: paths.logical, backupVersion: written.version };
  }

  const outcome = await deleteExactly(kube, c.namespace, c.name, c.uid, c.resourceVersion);
  const backup = { backupPath: paths.logical, backupVersion: written.version };
  if (outcome === 'deleted') return { action: 'deleted', ...backup };
  if (outcome === 'gone') return { action: 'skipped', reason: 'already gone', ...backup };
  return { action: 'refused', reason: 'changed while being backed up (delete precondition failed); not deleted', ...backup };
}

/**
 * Deletes one Secret only if it is still the object with this uid and resourceVersion
 * (DeleteOptions.preconditions): the apiserver answers 409 Conflict otherwise.
 */
export async function deleteExactly(kube: Kube, namespace: string, name: string, uid: string, resourceVersion: string): Promise<'deleted' | 'changed' | 'gone'> {
  try {
    await kube.call(
      `delete secret ${namespace}/${name}`,
      (o) => kube.core.deleteNamespacedSecret({ namespace, name, body: { preconditions: { uid, resourceVersion } } }, o),
      { retry: false },
    );
    return 'deleted';
  } catch (err) {
    if (err instanceof KubeError && err.status === 409) return 'changed';
    if (err instanceof KubeError && err.status === 404) return 'gone';
    throw err;
  }
}
