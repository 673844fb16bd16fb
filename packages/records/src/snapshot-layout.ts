/**
 * Where the raft-snapshot job's objects live in the bucket, and how their names are read back:
 * the one definition the writer (raft-snapshot) and the readers (kms-probe, list, verify) share.
 *
 *   <prefix><cluster>/<cluster_id>/<cluster>-<YYYYMMDDTHHMMSSZ>-<run>.snap        a snapshot (format 3)
 *   <prefix><cluster>/<cluster_id>/<cluster>-<YYYYMMDDTHHMMSSZ>-<run>.snap.json   its record, written once it was verified and stored
 *   <prefix><cluster>/<cluster_id>/.lock                                           held while a run of that cluster is in progress
 *   <prefix><cluster>/<cluster_id>/.format-3-since                                 when that cluster stopped writing format 2 (written once)
 *   <prefix><cluster>/<cluster>-<YYYYMMDDTHHMMSSZ>-<run>.snap[.json]               format 2 (earlier versions): still read
 *
 * `cluster` is the cluster's name (cluster_name, or configured), made safe for a key; an
 * operator finds it in the console. Names are not unique (every cluster nobody named is "vault"
 * somewhere), so the cluster_id Vault reports in sys/health (a UUID made when the cluster was
 * initialised) separates clusters that share one: each gets its own folder, its own lock and
 * its own retention. The UTC timestamp right after the name makes a plain lexicographic listing
 * (what S3 ListObjectsV2 returns) a listing in time order; the name appears in the file name too,
 * so that a downloaded file still says where it came from.
 */

const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const CLUSTER_ID = /^[0-9a-f][0-9a-f-]{6,62}[0-9a-f]$/;

export const SNAPSHOT_SUFFIX = '.snap';
/** The record beside a snapshot: its existence is what makes the snapshot a committed one. */
export const RECORD_SUFFIX = '.json';
export const LOCK_NAME = '.lock';
/**
 * Written once in a cluster's own folder after its first committed format-3 snapshot, never
 * pruned: its LastModified is when this cluster stopped writing format 2 (clusterScope).
 */
export const FORMAT3_SINCE_NAME = '.format-3-since';

/** What may appear in a cluster name inside a key: S3's "safe characters" minus the separators we use. */
export function sanitizeCluster(name: string): string {
  const clean = name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  if (!clean) throw new Error(`cluster name "${name}" has no usable characters (use letters, digits, '.', '_' or '-')`);
  // Cut after trimming, as format 2 did: the same name must give the same folder as before.
  return clean.slice(0, 63);
}

/** For config validation: whether sanitizeCluster accepts the name. */
export function isUsableClusterName(name: string): boolean {
  return /[a-z0-9_]/i.test(name);
}

/** For config validation: whether sanitizeClusterId accepts the id. */
export function isClusterId(id: string): boolean {
  return CLUSTER_ID.test(id.trim().toLowerCase());
}

/** A cluster_id as it appears in keys (lower case); throws for anything that is not one. */
export function sanitizeClusterId(id: string): string {
  const clean = id.trim().toLowerCase();
  if (!CLUSTER_ID.test(clean)) throw new Error('a cluster_id is a UUID as sys/health reports it (hex digits and dashes)');
  return clean;
}

/** The prefix as given, with exactly one trailing slash (or empty for the bucket root). */
export function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return p ? `${p}/` : '';
}

/** One cluster, as its objects are named. */
export interface ClusterRef {
  prefix: string;
  /** Already sanitized (sanitizeCluster). */
  cluster: string;
  /** Already sanitized (sanitizeClusterId). */
  clusterId: string;
}

/** The folder of every cluster of this name: each one's own folder, and format-2 objects. */
export function clusterFolder(prefix: string, cluster: string): string {
  return `${normalizePrefix(prefix)}${cluster}/`;
}

/** The folder of one cluster's objects. */
export function clusterIdFolder(ref: ClusterRef): string {
  return `${clusterFolder(ref.prefix, ref.cluster)}${ref.clusterId}/`;
}

export function formatStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export function snapshotKey(ref: ClusterRef, takenAt: Date, runId: string): string {
  return `${clusterIdFolder(ref)}${ref.cluster}-${formatStamp(takenAt)}-${runId}${SNAPSHOT_SUFFIX}`;
}

export function recordKey(snapshotKey: string): string {
  return `${snapshotKey}${RECORD_SUFFIX}`;
}

export function lockKey(ref: ClusterRef): string {
  return `${clusterIdFolder(ref)}${LOCK_NAME}`;
}

export function format3SinceKey(ref: ClusterRef): string {
  return `${clusterIdFolder(ref)}${FORMAT3_SINCE_NAME}`;
}

/** Where a format-2 run (before cluster ids) kept its lock. */
export function legacyLockKey(prefix: string, cluster: string): string {
  return `${clusterFolder(prefix, cluster)}${LOCK_NAME}`;
}

export interface ParsedSnapshotKey {
  cluster: string;
  /** undefined for a format-2 key (directly in the cluster's folder, from before cluster ids). */
  clusterId: string | undefined;
  takenAt: Date;
  runId: string;
}

/** Reads a snapshot key of either layout under this cluster name's folder; undefined for anything else (records, the lock, foreign names). */
export function parseSnapshotKey(key: string, prefix: string, cluster: string): ParsedSnapshotKey | undefined {
  const base = clusterFolder(prefix, cluster);
  if (!key.startsWith(base)) return undefined;
  const parts = key.slice(base.length).split('/');
  if (parts.length > 2) return undefined;
  const clusterId = parts.length === 2 ? parts[0]! : undefined;
  if (clusterId !== undefined && !CLUSTER_ID.test(clusterId)) return undefined;
  const name = parts.at(-1)!;
  const head = `${cluster}-`;
  if (!name.startsWith(head) || !name.endsWith(SNAPSHOT_SUFFIX)) return undefined;
  const [stamp, runId, ...extra] = name.slice(head.length, -SNAPSHOT_SUFFIX.length).split('-');
  if (!stamp || !runId || extra.length) return undefined;
  const m = STAMP.exec(stamp);
  if (!m || !/^[a-z0-9]+$/.test(runId)) return undefined;
  const takenAt = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  if (Number.isNaN(takenAt.getTime()) || formatStamp(takenAt) !== stamp) return undefined;
  return { cluster, clusterId, takenAt, runId };
}

/** The cluster ids that have a folder under this name, from a Delimiter '/' listing's CommonPrefixes of clusterFolder. */
export function clusterIdsIn(commonPrefixes: Iterable<string>, prefix: string, cluster: string): string[] {
  const base = clusterFolder(prefix, cluster);
  const out: string[] = [];
  for (const p of commonPrefixes) {
    const id = p.startsWith(base) ? p.slice(base.length, -1) : '';
    if (CLUSTER_ID.test(id)) out.push(id);
  }
  return out;
}

/** A short random id for one run: names its object, its upload and its lock. */
export function newRunId(): string {
  return crypto.getRandomValues(new Uint32Array(2)).reduce((s, n) => s + n.toString(36).padStart(7, '0'), '').slice(0, 10);
}

/** raft-snapshot's s3.prefix by default, and so kms-probe's snapshot.prefix. */
export const DEFAULT_SNAPSHOT_PREFIX = 'vault-snapshots/';

/**
 * Which cluster's objects to use, from what Vault reports (sys/health) and what is configured:
 * the configured name wins over cluster_name; a configured cluster_id stands in when Vault does
 * not answer, and must match when it does. Returns the reason when it cannot be decided.
 */
export function resolveCluster(
  reported: { name?: string | undefined; id?: string | undefined; node?: string | undefined } | undefined,
  configured: { cluster?: string | undefined; clusterId?: string | undefined },
): { cluster: string; clusterId: string } | { error: string } {
  const name = configured.cluster ?? reported?.name;
  if (!name) return { error: 'Vault reports no cluster_name: set snapshot.cluster' };
  const reportedId = reported?.id;
  if (reportedId && configured.clusterId && sanitizeClusterId(configured.clusterId) !== sanitizeClusterId(reportedId)) {
    return { error: `snapshot.clusterId is ${configured.clusterId} but Vault${reported?.node ? ` at ${reported.node}` : ''} is cluster ${sanitizeClusterId(reportedId)}` };
  }
  const id = reportedId ?? configured.clusterId;
  if (!id) return { error: `Vault${reported?.node ? ` (${reported.node})` : ''} reports no cluster_id (is it initialised and unsealed?); set snapshot.clusterId` };
  return { cluster: sanitizeCluster(name), clusterId: sanitizeClusterId(id) };
}
