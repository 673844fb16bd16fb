import { JobFailure, UsageError, z, type Logger } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { backupDoc, backupPaths, fromBackup, type BackupLocation } from './backup.ts';
import { KubeError, type Kube } from './kube.ts';

export interface RestoreOptions {
  kube: Kube;
  vault: VaultClient;
  backup: BackupLocation;
  /** A KV version of the backup; the latest when absent. */
  version?: number | undefined;
  dryRun: boolean;
  log: Logger;
  signal?: AbortSignal;
}

export interface RestoreResult {
  namespace: string;
  name: string;
  backupPath: string;
  backupVersion: number;
  keys: number;
  restored: boolean;
}

const kvVersioned = z.object({ data: z.unknown(), metadata: z.object({ version: z.number() }).loose() }).loose();

/** `namespace/name` from the command line. */
export function parseTarget(arg: string | undefined): { namespace: string; name: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(arg ?? '');
  if (!m) throw new UsageError('restore needs the Secret as <namespace>/<name>, e.g. restore payments/db-credentials');
  return { namespace: m[1]!, name: m[3]! };
}

/**
 * Puts a backed-up Secret back exactly: same name, namespace, type, labels, annotations and
 * data bytes (the base64 is sent as it was read). A Secret of that name that exists already is
 * left alone: the apiserver refuses the create with 409 and the job says so.
 */
export async function restoreSecret(target: { namespace: string; name: string }, opts: RestoreOptions): Promise<RestoreResult> {
  const paths = backupPaths(opts.backup, target.namespace, target.name);
  let read;
  try {
    read = await opts.vault.read(`${paths.api}${opts.version ? `?version=${opts.version}` : ''}`, kvVersioned, opts.signal ? { signal: opts.signal } : {});
  } catch (err) {
    if (err instanceof VaultError && err.status === 404) {
      throw new JobFailure(`no backup of ${target.namespace}/${target.name} at ${paths.logical}${opts.version ? ` version ${opts.version}` : ''}`);
    }
    throw err;
  }
  const doc = backupDoc.safeParse(read.data);
  if (!doc.success) throw new JobFailure(`${paths.logical} is not a secret-sweep backup (format ${'vaultkeeper.io/secret-backup/v1'} expected)`);
  if (doc.data.namespace !== target.namespace || doc.data.name !== target.name) {
    throw new JobFailure(`${paths.logical} holds a backup of ${doc.data.namespace}/${doc.data.name}, not of ${target.namespace}/${target.name}`);
  }
  const result: RestoreResult = {
    ...target,
    backupPath: paths.logical,
    backupVersion: read.metadata.version,
    keys: Object.keys(doc.data.data).length,
    restored: false,
  };
  if (opts.dryRun) {
    opts.log.info({ ...result }, 'dry run: would restore the Secret from its backup');
    return result;
  }
  try {
    await opts.kube.call(
      `create secret ${target.namespace}/${target.name}`,
      (o) => opts.kube.core.createNamespacedSecret({ namespace: target.namespace, body: fromBackup(doc.data) }, o),
      { retry: false },
    );
  } catch (err) {
    if (err instanceof KubeError && err.status === 409) {
      throw new JobFailure(`${target.namespace}/${target.name} exists already; not overwritten (delete or rename it first if the backup should win)`);
    }
    throw err;
  }
  result.restored = true;
  opts.log.info({ ...result }, 'restored the Secret from its backup');
  return result;
}
