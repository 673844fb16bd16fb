/**
 * Where vaultkeeper's jobs keep their own records in Vault KV v2 by default, as paths inside a
 * KV v2 mount (without the mount and without `data/`). Each job puts them in the mount it is
 * configured with (`secret` unless changed: oidc-rotation `kvMount`, emergency-token
 * `state.mount`, secret-sweep `remediation.backupMount`), so a reader must apply them to every
 * mount it looks at, not to `secret` alone. The policies (policies/<job>/policy.hcl) name the same
 * paths in mount `secret`; keep them in step.
 */
export const KV_RECORDS = {
  /** oidc-rotation's rotation record: this folder, then the OIDC auth mount (`…/oidc`). */
  oidcRotationFolder: 'vaultkeeper/oidc-rotation/',
  /** emergency-token's state record. */
  emergencyTokenState: 'vaultkeeper/emergency-token/state',
  /** secret-sweep's backups: this folder, then `<namespace>/<name>`. */
  secretSweepBackup: 'vaultkeeper/secret-sweep/backup',
} as const;

const folderOf = (path: string) => path.slice(0, path.lastIndexOf('/') + 1);

/**
 * The folders holding those records (each ending in `/`): every job's own folder, so that a
 * record written next to the default one (another OIDC mount's record) is covered too.
 */
export const KV_RECORD_FOLDERS: readonly string[] = [
  KV_RECORDS.oidcRotationFolder,
  folderOf(KV_RECORDS.emergencyTokenState),
  folderOf(KV_RECORDS.secretSweepBackup),
];

/** Whether a path inside a KV mount is one of vaultkeeper's record folders or lies under one. */
export function isKvRecordPath(path: string): boolean {
  const p = `${path.replace(/^\/+|\/+$/g, '')}/`;
  return KV_RECORD_FOLDERS.some((f) => p.startsWith(f));
}
