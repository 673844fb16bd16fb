/**
 * Which objects under a cluster name's folder belong to one cluster: the one rule raft-snapshot
 * (retention, cleanup) and kms-probe (snapshot age) both apply.
 *
 * Format-3 objects name their cluster_id (its own folder): they are that cluster's, always.
 * Format-2 objects (from before cluster ids, directly in <prefix><name>/) name nobody. After an
 * upgrade they are this cluster's own history, but a second cluster of the same name may share
 * the bucket and still run the old version: it writes format 2 only, never makes a cluster_id
 * folder, and from its folder alone looks like our past. Format-2 objects are therefore adopted
 * only while nothing proves another format-2 writer:
 *
 *  - no other cluster_id folder exists under the name (then nobody can tell whose they are), and
 *  - nothing in the name's folder (format-2 snapshot, record, legacy lock, multipart upload) was
 *    written after (or in the same second as: S3 times have one-second resolution) this
 *    cluster's first committed format-3 snapshot: once a cluster stored format
 *    3 it never writes format 2 again, so a later format-2 write is somebody else's. That moment
 *    is kept in a marker object (.format-3-since, written once, never pruned: retention removes the
 *    first snapshot itself sooner or later) or, before it exists, the oldest committed format-3
 *    snapshot. Both times are S3's (LastModified), so no two clocks are compared.
 *
 * Removing (pruning, deleting what looks uncommitted, aborting uploads) asks for more than
 * counting: this cluster must already have a committed format-3 snapshot to compare with (on the
 * first run after an upgrade nothing proves anything yet), and no live legacy lock (a format-2 run
 * in progress right now). Whatever is not adopted is left alone, and said.
 */
import { FORMAT3_SINCE_NAME, LOCK_NAME, RECORD_SUFFIX, clusterFolder, clusterIdsIn, parseSnapshotKey } from './snapshot-layout.ts';

/** One object of a ListObjectsV2 listing. */
export interface ListedObject {
  key: string;
  lastModified: Date | undefined;
}

export interface ClusterScopeInput {
  prefix: string;
  /** Sanitized cluster name. */
  cluster: string;
  /** Sanitized cluster_id of the cluster asking. */
  clusterId: string;
  /** The name's folder, listed with Delimiter '/': its own objects (format 2, the legacy lock) and its sub-folders (CommonPrefixes). */
  top: { objects: ListedObject[]; folders: string[] };
  /** This cluster's own folder, listed. */
  own: ListedObject[];
  /**
   * The legacy lock (<prefix><name>/.lock), as read: 'live' while it has not expired (or cannot be
   * read), 'expired', 'none'. A reader that does not read it passes 'live' when it is listed.
   */
  legacyLock: 'none' | 'expired' | 'live';
}

export interface ClusterScope {
  /** Format-2 objects count as this cluster's (listed, counted for age and retention). */
  adopt: boolean;
  /** And may be removed (pruned, cleaned up, their uploads aborted). Implies adopt. */
  mayRemove: boolean;
  /** Other cluster ids with a folder under the same name. */
  otherClusterIds: string[];
  /** Format-2 snapshot keys in the name's folder. */
  legacySnapshots: string[];
  /** When this cluster stopped writing format 2: its marker's LastModified or its oldest committed format-3 snapshot's, whichever is earlier. */
  since: Date | undefined;
  /** Whether the .format-3-since marker exists (raft-snapshot writes it when it does not). */
  marked: boolean;
  /** Why format-2 objects are not adopted or not removed; undefined when they are (or there are none). */
  reason: string | undefined;
}

export function clusterScope(input: ClusterScopeInput): ClusterScope {
  const { prefix, cluster, clusterId } = input;
  const folder = clusterFolder(prefix, cluster);
  const otherClusterIds = clusterIdsIn(input.top.folders, prefix, cluster).filter((id) => id !== clusterId);
  const legacySnapshots = input.top.objects.filter((o) => parseSnapshotKey(o.key, prefix, cluster)).map((o) => o.key);
  const ownKeys = new Set(input.own.map((o) => o.key));
  const committed = input.own
    .filter((o) => !o.key.endsWith(RECORD_SUFFIX) && parseSnapshotKey(o.key, prefix, cluster)?.clusterId === clusterId && ownKeys.has(`${o.key}${RECORD_SUFFIX}`))
    .map((o) => o.lastModified?.getTime())
    .filter((t): t is number => t !== undefined);
  const marker = input.own.find((o) => o.key === `${folder}${clusterId}/${FORMAT3_SINCE_NAME}`);
  if (marker?.lastModified) committed.push(marker.lastModified.getTime());
  const since = committed.length ? new Date(Math.min(...committed)) : undefined;
  const legacyObjects = input.top.objects.filter((o) => o.key === `${folder}${LOCK_NAME}` || isLegacyKey(o.key, prefix, cluster));
  const later = since ? legacyObjects.filter((o) => o.lastModified && o.lastModified.getTime() >= since.getTime()) : [];

  const out = { otherClusterIds, legacySnapshots, since, marked: marker !== undefined };
  if (!legacyObjects.length) return { ...out, adopt: true, mayRemove: true, reason: undefined };
  if (otherClusterIds.length) {
    return { ...out, adopt: false, mayRemove: false, reason: `other clusters named ${cluster} (cluster id ${otherClusterIds.join(', ')}) share ${folder}: its format-2 objects cannot be told apart` };
  }
  if (later.length) {
    return {
      ...out,
      adopt: false,
      mayRemove: false,
      reason: `${later.length} format-2 object(s) in ${folder} were written after this cluster's first format-3 snapshot (${since!.toISOString()}), e.g. ${later[0]!.key}: another cluster of this name still runs a version before cluster ids; its objects are left alone`,
    };
  }
  if (!since) return { ...out, adopt: true, mayRemove: false, reason: `this cluster has no format-3 snapshot yet, so nothing proves that the format-2 objects in ${folder} are its own: counted, not removed` };
  if (input.legacyLock === 'live') return { ...out, adopt: true, mayRemove: false, reason: `${folder}${LOCK_NAME} is held (a format-2 run in progress?): format-2 objects are not removed this run` };
  return { ...out, adopt: true, mayRemove: true, reason: undefined };
}

/** Whether a multipart upload of a format-2 key may be aborted: only one begun before this cluster's first format-3 snapshot. */
export function mayAbortLegacyUpload(scope: ClusterScope, initiated: Date | undefined): boolean {
  return scope.mayRemove && scope.since !== undefined && initiated !== undefined && initiated.getTime() < scope.since.getTime();
}

/** A format-2 snapshot or its record (directly in the name's folder). */
function isLegacyKey(key: string, prefix: string, cluster: string): boolean {
  const snap = key.endsWith(RECORD_SUFFIX) ? key.slice(0, -RECORD_SUFFIX.length) : key;
  const parsed = parseSnapshotKey(snap, prefix, cluster);
  return parsed !== undefined && parsed.clusterId === undefined;
}

/** One ListObjectsV2 page, as the SDK returns it (only the fields read here). */
export interface ListPage {
  Contents?: Array<{ Key?: string | undefined; Size?: number | undefined; LastModified?: Date | undefined }> | undefined;
  CommonPrefixes?: Array<{ Prefix?: string | undefined }> | undefined;
  IsTruncated?: boolean | undefined;
  NextContinuationToken?: string | undefined;
}

/**
 * A folder listed with Delimiter '/', every page (ListObjectsV2 returns at most 1,000 keys a
 * page: reading only the first would hide the newest snapshots and stop pruning), or at most
 * `maxPages`. `page` sends one ListObjectsV2 (Prefix, Delimiter '/', ContinuationToken) with the
 * caller's client, so this package needs no S3 SDK.
 */
export async function listFolder(
  page: (prefix: string, continuationToken: string | undefined) => Promise<ListPage>,
  prefix: string,
  maxPages = Number.POSITIVE_INFINITY,
): Promise<{ objects: Array<ListedObject & { size: number }>; folders: string[] }> {
  const objects: Array<ListedObject & { size: number }> = [];
  const folders: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const p = await page(prefix, token);
    for (const o of p.Contents ?? []) if (o.Key) objects.push({ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified });
    for (const f of p.CommonPrefixes ?? []) if (f.Prefix) folders.push(f.Prefix);
    token = p.IsTruncated ? p.NextContinuationToken : undefined;
  } while (token && ++pages < maxPages);
  return { objects, folders };
}
