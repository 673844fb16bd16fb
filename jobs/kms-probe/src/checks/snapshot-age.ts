// Is the newest verified Raft snapshot of this cluster in S3 younger than the threshold? Objects
// are named as @vaultkeeper/records lays them out (the raft-snapshot job writes with the same
// definition): this cluster's folder <prefix><name>/<cluster_id>/, and the format-2 objects
// directly in <prefix><name>/ from before cluster ids only while the shared rule (records
// clusterScope) adopts them: no other cluster id under the name, nothing format 2 written after
// this cluster's first format-3 snapshot (else another cluster still runs the old version). A
// snapshot counts as verified when its record object is beside it (the job writes it only once the
// snapshot was verified and stored); the lock and anything else not named like a snapshot is not
// a snapshot at all. Two listings answer it (paginated: a folder past 1,000 objects must not hide
// the newest one); no object is read.
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
// The S3 module alone: importing the package's index here would load the S3 SDK at start-up.
import { createS3Client } from '@vaultkeeper/aws/s3';
import { clusterFolder, clusterScope, legacyLockKey, listFolder, parseSnapshotKey, RECORD_SUFFIX, recordKey, resolveCluster } from '@vaultkeeper/records';
import { clusterIdentity, type VaultClient } from '@vaultkeeper/vault';
import { failed, type CheckOutcome } from '../check.ts';
import { callSignal, probeClientOptions, type ProbeClientOptions } from '../aws-clients.ts';
import { vaultFailureOutcome } from '../classify-vault-error.ts';
import { formatDuration } from '../format-duration.ts';

export function createProbeS3Client(opts: ProbeClientOptions & { forcePathStyle: boolean }): S3Client {
  return createS3Client({ ...probeClientOptions(opts), forcePathStyle: opts.forcePathStyle });
}

/**
 * The cluster whose snapshots count: its name (as configured for the raft-snapshot job, else
 * cluster_name) and its cluster_id, from sys/health (no token needed; any node answers). When
 * Vault does not answer, a configured snapshot.clusterId (with snapshot.cluster) stands in: the
 * backup's age matters most when Vault is down.
 */
export async function snapshotCluster(
  vault: VaultClient | undefined,
  configured: { cluster?: string | undefined; clusterId?: string | undefined },
  callTimeoutSeconds: number,
  signal: AbortSignal,
): Promise<{ cluster: string; clusterId: string; note?: string } | CheckOutcome> {
  let identity;
  try {
    if (!vault) throw new Error('no Vault client');
    identity = await clusterIdentity(vault, callSignal(signal, callTimeoutSeconds));
  } catch (err) {
    if (signal.aborted || !configured.clusterId || !configured.cluster) return vaultFailureOutcome(err, 'sys/health (which cluster the snapshots are of)');
    const ref = resolveCluster(undefined, configured);
    if ('error' in ref) return failed('other', ref.error);
    return { ...ref, note: `Vault did not answer sys/health; cluster id ${ref.clusterId} from snapshot.clusterId` };
  }
  const ref = resolveCluster(identity, configured);
  if ('error' in ref) return failed('other', `${ref.error} (so this cluster's snapshots cannot be told apart)`);
  return ref;
}

export interface SnapshotAgeInput {
  s3: S3Client;
  bucket: string;
  /** The raft-snapshot job's s3.prefix. */
  prefix: string;
  cluster: string;
  clusterId: string;
  maxAgeSeconds: number;
  callTimeoutSeconds: number;
  /** Said with the outcome (e.g. where the cluster id came from). */
  note?: string | undefined;
  /** Stop listing a folder after this many pages (1,000 keys each): the probe stays cheap on any bucket. */
  maxPages?: number;
}

export async function checkSnapshotAge(input: SnapshotAgeInput, signal: AbortSignal, now = Date.now()): Promise<CheckOutcome> {
  const folder = clusterFolder(input.prefix, input.cluster);
  const own = `${folder}${input.clusterId}/`;
  const where = `s3://${input.bucket}/${own}`;
  const list = (prefix: string) =>
    listFolder(
      (p, token) =>
        input.s3.send(new ListObjectsV2Command({ Bucket: input.bucket, Prefix: p, Delimiter: '/', ContinuationToken: token }), {
          abortSignal: callSignal(signal, input.callTimeoutSeconds),
        }),
      prefix,
      input.maxPages ?? 100,
    ).then(({ objects, folders }) => ({
      objects: objects.flatMap((o) => (o.lastModified ? [{ ...o, modified: o.lastModified.getTime() }] : [])),
      folders,
    }));
  const [top, mine] = await Promise.all([list(folder), list(own)]);
  // The probe never removes anything and reads no object: a listed legacy lock counts as live.
  const legacyLock = top.objects.some((o) => o.key === legacyLockKey(input.prefix, input.cluster)) ? 'live' : 'none';
  const verdict = clusterScope({ prefix: input.prefix, cluster: input.cluster, clusterId: input.clusterId, top, own: mine.objects, legacyLock });
  const others = verdict.otherClusterIds;
  const scope = [...mine.objects, ...(verdict.adopt ? top.objects : [])];
  const keys = new Set(scope.map((o) => o.key));
  const snapshots = scope.filter((o) => !o.key.endsWith(RECORD_SUFFIX) && parseSnapshotKey(o.key, input.prefix, input.cluster));
  const notes = [
    ...(input.note ? [input.note] : []),
    ...(others.length ? [`${others.length} other cluster(s) named ${input.cluster} share ${folder} (cluster id ${others.join(', ')}); only ${input.clusterId} counted`] : []),
    ...(!verdict.adopt && verdict.legacySnapshots.length ? [`${verdict.legacySnapshots.length} format-2 snapshot(s) not counted: ${verdict.reason}`] : []),
  ];
  if (!snapshots.length) return failed('stale', `no snapshot under ${where}`, notes.length ? { notes } : {});

  // Newest first; S3 times have one-second resolution, and the raft-snapshot job names objects
  // so that they sort by time, so the key breaks ties.
  snapshots.sort((a, b) => b.modified - a.modified || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
  const newestIndex = snapshots.findIndex((o) => keys.has(recordKey(o.key)));
  const newest = newestIndex >= 0 ? snapshots[newestIndex] : undefined;
  if (!newest) {
    return failed('stale', `none of the ${snapshots.length} snapshots under ${where} is verified (no ${RECORD_SUFFIX} record beside it)`, notes.length ? { notes } : {});
  }
  const age = (now - newest.modified) / 1000;
  const details = { key: newest.key, lastModified: new Date(newest.modified).toISOString(), ageSeconds: Math.round(age), objects: snapshots.length };
  if (newestIndex) notes.push(`${newestIndex} newer snapshot(s) without a ${RECORD_SUFFIX} record ignored`);
  if (age > input.maxAgeSeconds) {
    return failed('stale', `newest verified snapshot is ${formatDuration(age)} old (limit ${formatDuration(input.maxAgeSeconds)})`, { notes, details });
  }
  return { status: notes.length ? 'warn' : 'ok', summary: `newest verified snapshot ${formatDuration(age)} old`, ...(notes.length ? { notes } : {}), details };
}
