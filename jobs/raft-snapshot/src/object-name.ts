/**
 * Where the job's objects live in the bucket, and how their names are read back.
 *
 *   <prefix><cluster>/<cluster>-<YYYYMMDDTHHMMSSZ>-<run>.snap        a snapshot (a multipart upload until verified)
 *   <prefix><cluster>/<cluster>-<YYYYMMDDTHHMMSSZ>-<run>.snap.json   its record, written once it was verified and stored
 *   <prefix><cluster>/.lock                                           held while a run is in progress
 *
 * The UTC timestamp right after the cluster name makes a plain lexicographic listing (which is
 * what S3 ListObjectsV2 returns) a listing in time order; the cluster name appears twice so that a
 * downloaded file still says where it came from.
 */

const STAMP = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** What may appear in a cluster name inside a key: S3's "safe characters" minus the separators we use. */
export function sanitizeCluster(name: string): string {
  const clean = name
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
  if (!clean) throw new Error(`cluster name "${name}" has no usable characters (use letters, digits, '.', '_' or '-')`);
  return clean.slice(0, 63);
}

/** The prefix as given, with exactly one trailing slash (or empty for the bucket root). */
export function normalizePrefix(prefix: string): string {
  const p = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  return p ? `${p}/` : '';
}

export function clusterPrefix(prefix: string, cluster: string): string {
  return `${normalizePrefix(prefix)}${cluster}/`;
}

export function formatStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

export function snapshotKey(prefix: string, cluster: string, takenAt: Date, runId: string): string {
  return `${clusterPrefix(prefix, cluster)}${cluster}-${formatStamp(takenAt)}-${runId}.snap`;
}

/** The record beside a snapshot: its existence is what makes the snapshot a committed one. */
export function recordKey(snapshotKey: string): string {
  return `${snapshotKey}${RECORD_SUFFIX}`;
}

export const RECORD_SUFFIX = '.json';

export function lockKey(prefix: string, cluster: string): string {
  return `${clusterPrefix(prefix, cluster)}.lock`;
}

export interface ParsedSnapshotKey {
  cluster: string;
  takenAt: Date;
  runId: string;
}

/** Reads a key written by snapshotKey under this cluster's prefix; undefined for anything else. */
export function parseSnapshotKey(key: string, prefix: string, cluster: string): ParsedSnapshotKey | undefined {
  const base = clusterPrefix(prefix, cluster);
  if (!key.startsWith(base)) return undefined;
  const name = key.slice(base.length);
  const head = `${cluster}-`;
  if (!name.startsWith(head) || !name.endsWith('.snap')) return undefined;
  const [stamp, runId, ...extra] = name.slice(head.length, -'.snap'.length).split('-');
  if (!stamp || !runId || extra.length) return undefined;
  const m = STAMP.exec(stamp);
  if (!m || !/^[a-z0-9]+$/.test(runId)) return undefined;
  const takenAt = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  if (Number.isNaN(takenAt.getTime()) || formatStamp(takenAt) !== stamp) return undefined;
  return { cluster, takenAt, runId };
}

/** A short random id for one run: names its object, its upload and its lock. */
export function newRunId(): string {
  return crypto.getRandomValues(new Uint32Array(2)).reduce((s, n) => s + n.toString(36).padStart(7, '0'), '').slice(0, 10);
}
