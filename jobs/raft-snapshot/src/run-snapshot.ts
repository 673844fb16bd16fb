/**
 * The default command: lock, snapshot + verify + upload (retried from the start on the active node
 * of the moment), commit (the record beside the snapshot), prune. Retention runs only after a
 * successful commit. Housekeeping (removing what earlier runs left, pruning) never costs the
 * backup: whatever S3 refuses there is a warning, a summary field and a metric, not a failure.
 */
import { PutObjectCommand, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { JobFailure, isAbortError, withRetry, type JobContext, type Logger } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { FORMAT_VERSION, JOB_MARK, VERIFIED_CHECKS, clusterFolder, format3SinceKey, lockKey, mayAbortLegacyUpload, newRunId, recordKey, snapshotKey, type ClusterRef } from '@vaultkeeper/records';
import { clusterInfo } from './cluster-info.ts';
import type { jobConfig } from './config.ts';
import { acquireLock } from './lock.ts';
import { planRetention, type RetentionPlan, type RetentionPolicy } from './retention.ts';
import {
  abortUpload,
  deleteObjects,
  encryptionParams,
  isCommitted,
  listUploads,
  scanCluster,
  type ClusterScan,
  type PendingUpload,
  type S3Settings,
  type StoredObject,
} from './s3-store.ts';
import { S3UploadError, commitSnapshot, discardSnapshot, streamToS3 } from './s3-upload.ts';
import { isVaultSideTransient, openSnapshotStream } from './snapshot-stream.ts';
import { SnapshotVerificationError, type ArchiveReport } from './verify-archive.ts';

type Ctx = JobContext<(typeof jobConfig)['shape']>;

export async function runSnapshot(ctx: Ctx, vault: VaultClient, client: S3Client): Promise<Record<string, unknown>> {
  const { config, log } = ctx;
  const s3: S3Settings = config.s3;
  const started = Date.now();
  const deadlineMs = config.snapshot.deadlineSeconds * 1000;
  // One signal for everything the run does: SIGTERM or the run's deadline, whichever comes first.
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(deadlineMs)]);
  const { cluster, clusterId, version } = await clusterInfo(vault, config.snapshot, log, signal);
  const ref: ClusterRef = { prefix: s3.prefix, cluster, clusterId };
  const runId = newRunId();
  const takenAt = new Date(started);
  const key = snapshotKey(ref, takenAt, runId);

  if (ctx.dryRun) return dryRun(ctx, vault, client, ref, runId);

  const housekeeping = new Housekeeping(log);
  const lock = await acquireLock({
    client,
    bucket: s3.bucket,
    key: lockKey(ref),
    runId,
    clusterId,
    encryption: encryptionParams(s3),
    // Past this the holder has certainly stopped (deadline, then the grace to clean up).
    holdSeconds: config.snapshot.deadlineSeconds + config.shutdownGraceSeconds + 60,
    waitSeconds: config.lock.waitSeconds,
    log,
    signal,
  });
  ctx.onCleanup(() => lock.release());
  // Registered after the lock, so it runs before the release (cleanups run in reverse).
  let committed = false;
  ctx.onCleanup(async () => {
    if (!committed) await discardSnapshot(client, s3.bucket, key, log);
  });
  // Neither touches this run's key, so both go on while the snapshot streams. Under the lock no
  // other run of this cluster adds or removes objects, so a listing taken now is still right
  // after the commit. Neither fails the run (only an abort ends them): what fails is noted.
  const scanned: Promise<ClusterScan | undefined> = scanCluster(client, s3, cluster, clusterId, signal).then(
    (scan) => {
      for (const k of scan.vanished) housekeeping.warn({ key: k }, `${k} was listed and then gone before its HEAD (a lifecycle rule or a person deleted it); skipped`);
      reportSharedFolder(scan, ref, log);
      return scan;
    },
    (err: unknown) => {
      if (signal.aborted) return undefined;
      housekeeping.warn({ err }, `could not list ${clusterFolder(s3.prefix, cluster)}: ${describe(err)}; no cleanup and no pruning this run`);
      return undefined;
    },
  );
  const swept = scanned.then((scan) => scan && sweepLeftovers(client, s3, ref, key, scan, housekeeping, signal));
  swept.catch(() => undefined); // awaited after the upload; only an abort rejects it

  let attempts = 0;
  let servedBy = '';
  const report: ArchiveReport = await withRetry(
    async (attempt) => {
      attempts = attempt;
      if (attempt > 1) await renewToken(vault, log, signal);
      const source = await openSnapshotStream(vault, log, signal);
      servedBy = source.node;
      log.info({ node: source.node, attempt, key }, 'snapshot stream started');
      const metadata = {
        'vaultkeeper-job': JOB_MARK,
        'vaultkeeper-format': FORMAT_VERSION,
        cluster,
        'cluster-id': clusterId,
        'vault-version': version,
        'vault-node': source.node,
        'taken-at': takenAt.toISOString(),
        'run-id': runId,
      };
      return streamToS3({ client, s3, key, metadata, source, log });
    },
    {
      deadlineMs,
      maxAttempts: config.snapshot.maxAttempts,
      baseDelayMs: 1_000,
      maxDelayMs: 15_000,
      signal,
      // A new attempt fetches a new snapshot, so a damaged or cut stream is worth one; an S3 failure
      // was already retried request by request inside the SDK.
      retryable: (err) => !signal.aborted && (isVaultSideTransient(err) || err instanceof SnapshotVerificationError),
      onRetry: ({ attempt, delayMs, error }) => log.warn({ attempt, delayMs, err: error }, 'snapshot attempt failed; retrying from the start'),
    },
  ).catch((err: unknown) => {
    throw explain(err, signal, ctx.signal, attempts);
  });

  log.debug({ key, bytes: report.bytes, attempts }, 'upload verified and complete; committing');
  // Vault is not needed any more: its token goes now, not at the end of the run.
  const revoked = vault.revokeOwnToken().then(
    (done) => done && log.info('login token revoked'),
    (err: unknown) => log.warn({ err }, 'could not revoke the login token now; trying again at exit'),
  );
  await swept;
  await commitSnapshot({
    client,
    s3,
    record: {
      job: JOB_MARK,
      format: 3,
      key,
      cluster,
      clusterId,
      takenAt: takenAt.toISOString(),
      runId,
      sha256: report.sha256,
      size: report.bytes,
      raftIndex: report.meta.index,
      raftTerm: report.meta.term,
      vaultVersion: version,
      vaultNode: servedBy,
      verified: VERIFIED_CHECKS,
      members: report.members,
    },
    log,
    signal,
  }).catch((err: unknown) => {
    if (err instanceof JobFailure || signal.aborted) throw err;
    // The cleanup registered above discards the completed object.
    throw new JobFailure(`could not write the record of s3://${s3.bucket}/${key}: ${err instanceof Error ? err.message : String(err)}; the snapshot is discarded, nothing was stored`, {
      check: 'commit',
      attempts,
    });
  });
  committed = true;
  log.info(
    { key, bytes: report.bytes, sha256: report.sha256, raftIndex: report.meta.index, raftTerm: report.meta.term, node: servedBy, attempts },
    'snapshot verified and stored',
  );

  const streamSeconds = (Date.now() - started) / 1000;
  ctx.metrics.gauge('size_bytes', 'Size of the last stored snapshot.').set(report.bytes);
  ctx.metrics.gauge('raft_index', 'Raft index of the last stored snapshot.').set(Number(report.meta.index));
  ctx.metrics.gauge('attempts', 'Attempts the last run needed.').set(attempts);
  ctx.metrics.gauge('latest_object_timestamp_seconds', 'Unix time the newest verified snapshot in the bucket was taken.').set(takenAt.getTime() / 1000);
  ctx.metrics.gauge('latest_object_age_seconds', 'Age of the newest verified snapshot when the run ended.').set(streamSeconds);
  ctx.metrics.gauge('throughput_bytes_per_second', 'Snapshot bytes per second of the last run, stream to commit.').set(report.bytes / Math.max(streamSeconds, 0.001));

  let pruned: string[] = [];
  let kept = 0;
  const scan = await scanned;
  if (scan?.legacy && !scan.legacy.marked) await markFormat3Since(client, s3, ref, housekeeping, signal);
  if (config.retention.enabled && scan) {
    const plan = planOver(removable(scan), key, takenAt, config.retention);
    // The object just written must be among the kept; if it is not, something is off: prune nothing.
    if (!plan.keep.some((k) => k.key === key)) {
      housekeeping.warn({ key }, 'the new snapshot is not in the retention plan; pruning nothing');
    } else {
      const outcome = await pruneSnapshots(client, s3.bucket, plan.prune.map((p) => p.key), housekeeping, signal);
      pruned = outcome.pruned;
      kept = plan.keep.length + outcome.stillCommitted;
    }
    ctx.metrics.gauge('stored_objects', 'Verified snapshots of this cluster in the bucket after pruning.').set(kept);
    ctx.metrics.gauge('pruned_objects', 'Snapshots pruned by the last run.').set(pruned.length);
  }
  const others = scan ? scan.clusterIds.filter((id) => id !== clusterId) : [];
  const legacyLeftAlone = scan?.legacy?.reason ? scan.legacy.legacySnapshots.length : 0;
  ctx.metrics.gauge('legacy_objects_left_alone', 'Format-2 snapshots in this cluster name’s folder the last run left alone (not provably this cluster’s).').set(legacyLeftAlone);
  ctx.metrics.gauge('other_clusters_in_folder', 'Other clusters (cluster ids) whose snapshots share this cluster name’s folder.').set(others.length);
  ctx.metrics.gauge('housekeeping_warnings', 'What the last run could not clean up or prune (the snapshot was stored all the same).').set(housekeeping.warnings.length);

  await revoked;
  return {
    bucket: s3.bucket,
    key,
    bytes: report.bytes,
    sha256: report.sha256,
    raftIndex: report.meta.index,
    raftTerm: report.meta.term,
    node: servedBy,
    vaultVersion: version,
    attempts,
    encryption: encryptionParams(s3).ServerSideEncryption ?? 'none',
    cluster,
    clusterId,
    kept,
    pruned: pruned.length,
    housekeepingWarnings: housekeeping.warnings,
    ...(others.length ? { sharedWith: others } : {}),
    ...(legacyLeftAlone ? { legacyObjectsLeftAlone: legacyLeftAlone } : {}),
  };
}

/** What housekeeping could not do: each a warning line now, and the list in the summary. */
class Housekeeping {
  readonly warnings: string[] = [];
  constructor(readonly log: Logger) {}
  warn(fields: Record<string, unknown>, message: string): void {
    this.warnings.push(message);
    this.log.warn(fields, `housekeeping: ${message}`);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * Clusters that share a name also share its folder: each keeps its own objects (its cluster_id
 * folder, its lock, its retention), but an operator reading keys by name cannot tell them apart.
 * Format-2 objects there are this cluster's only while nothing proves another format-2 writer
 * (@vaultkeeper/records clusterScope); when they are left alone, that is said on every run. Never fatal.
 */
function reportSharedFolder(scan: ClusterScan, ref: ClusterRef, log: Logger): void {
  const others = scan.clusterIds.filter((id) => id !== ref.clusterId);
  const folder = clusterFolder(ref.prefix, ref.cluster);
  if (others.length) {
    log.warn(
      { folder, clusterId: ref.clusterId, otherClusterIds: others },
      `two or more clusters share the folder ${folder} (same cluster name): each keeps and prunes only its own snapshots, but give each cluster its own cluster_name or snapshot.cluster`,
    );
  }
  const legacy = scan.legacy;
  if (legacy?.reason && legacy.legacySnapshots.length) {
    log.warn(
      { folder, clusterId: ref.clusterId, legacyObjects: legacy.legacySnapshots.length, counted: legacy.adopt, removable: legacy.mayRemove, since: legacy.since?.toISOString() },
      `format-2 snapshots left alone: ${legacy.reason}`,
    );
  }
}

/** The snapshots this run may prune or clean up: its own folder's, and format-2 ones only when clusterScope says they may be removed. */
function removable(scan: ClusterScan): StoredObject[] {
  return scan.snapshots.filter((o) => o.clusterId !== undefined || scan.legacy?.mayRemove);
}

/** The plan over what was listed plus the snapshot just committed. */
function planOver(stored: StoredObject[], key: string, takenAt: Date, policy: RetentionPolicy): RetentionPlan {
  const ours = stored.filter((o) => isCommitted(o) && o.key !== key).map((o) => ({ key: o.key, takenAt: o.takenAt }));
  return planRetention([...ours, { key, takenAt }], policy);
}

/** Verified snapshots of ours only: objects without this job's record are never pruned. */
export async function retentionPlan(
  client: S3Client,
  s3: S3Settings,
  ref: ClusterRef,
  policy: RetentionPolicy,
  signal: AbortSignal,
  extra: StoredObject[] = [],
): Promise<RetentionPlan> {
  const stored = [...removable(await scanCluster(client, s3, ref.cluster, ref.clusterId, signal)), ...extra];
  return planRetention(
    stored.filter(isCommitted).map((o) => ({ key: o.key, takenAt: o.takenAt })),
    policy,
  );
}

/**
 * Deletes snapshots and their records, record first: a snapshot whose record S3 would not delete
 * is left whole (still committed, pruned by a later run); one whose own deletion failed has no
 * record any more, no longer counts, and is removed by the next run's cleanup.
 */
async function pruneSnapshots(
  client: S3Client,
  bucket: string,
  keys: string[],
  housekeeping: Housekeeping,
  signal: AbortSignal,
): Promise<{ pruned: string[]; stillCommitted: number }> {
  const records = await deleteObjects(client, bucket, keys.map(recordKey), signal);
  for (const f of records.failed) housekeeping.warn({ key: f.key, reason: f.reason }, `could not prune ${f.key.slice(0, -'.json'.length)} (S3 refused to delete its record: ${f.reason}); kept for now`);
  const recordsGone = new Set(records.deleted);
  const snapshots = await deleteObjects(client, bucket, keys.filter((k) => recordsGone.has(recordKey(k))), signal);
  for (const f of snapshots.failed) housekeeping.warn({ key: f.key, reason: f.reason }, `could not delete the pruned snapshot ${f.key} (${f.reason}); its record is gone, the next run removes it`);
  for (const key of snapshots.deleted) housekeeping.log.info({ key }, 'pruned');
  return { pruned: snapshots.deleted, stillCommitted: records.failed.length };
}

/**
 * What a killed run (SIGKILL, OOM, node loss) or a failed cleanup left behind: multipart uploads
 * never completed, snapshots of ours never committed (no record), records without a snapshot.
 * Safe to remove while we hold the lock, since no other run of this cluster exists. Format-2
 * objects only when clusterScope says they may be removed (otherwise they may be an old-version
 * run's in progress, under a lock we do not hold); every step that fails is a warning and the
 * next step goes on.
 */
async function sweepLeftovers(client: S3Client, s3: S3Settings, ref: ClusterRef, ours: string, scan: ClusterScan, housekeeping: Housekeeping, signal: AbortSignal): Promise<void> {
  const folder = clusterFolder(s3.prefix, ref.cluster);
  const own = `${folder}${ref.clusterId}/`;
  const legacy = scan.legacy;
  let uploads: PendingUpload[] = [];
  try {
    const all = await listUploads(client, s3.bucket, legacy?.mayRemove ? folder : own, signal);
    // This cluster's folder; format-2 uploads directly in the name's folder only when begun
    // before this cluster's first format-3 snapshot (later ones are another format-2 writer's).
    uploads = all.filter((u) => u.key !== ours && (u.key.startsWith(own) || (!u.key.slice(folder.length).includes('/') && legacy !== undefined && mayAbortLegacyUpload(legacy, u.initiated))));
  } catch (err) {
    if (signal.aborted) throw err;
    housekeeping.warn({ err }, `could not list multipart uploads under ${folder} (${describe(err)}); abandoned uploads, if any, stay until a bucket lifecycle rule aborts them`);
  }
  for (const u of uploads) {
    try {
      await abortUpload(client, s3.bucket, u, signal);
      housekeeping.log.warn({ key: u.key, uploadId: u.uploadId, initiated: u.initiated?.toISOString() }, 'aborted a multipart upload left by an earlier run');
    } catch (err) {
      if (signal.aborted) throw err;
      housekeeping.warn({ key: u.key, uploadId: u.uploadId, err }, `could not abort the multipart upload of ${u.key} left by an earlier run (${describe(err)})`);
    }
  }
  const uncommitted = removable(scan).filter((o) => o.meta && !o.recorded && o.key !== ours).map((o) => o.key);
  const strays = scan.strayRecords.filter((r) => r.startsWith(own) || legacy?.mayRemove);
  const removed = await deleteObjects(client, s3.bucket, [...uncommitted, ...strays], signal);
  for (const key of removed.deleted) housekeeping.log.warn({ key }, 'removed what an earlier run left uncommitted');
  for (const f of removed.failed) housekeeping.warn({ key: f.key, reason: f.reason }, `could not remove ${f.key}, left uncommitted by an earlier run (${f.reason})`);
}

/**
 * From now on this cluster writes format 3 only: the marker's LastModified says since when, for
 * clusterScope (a format-2 object written later is another cluster's). Written once (If-None-Match),
 * after a commit, never pruned.
 */
async function markFormat3Since(client: S3Client, s3: S3Settings, ref: ClusterRef, housekeeping: Housekeeping, signal: AbortSignal): Promise<void> {
  const key = format3SinceKey(ref);
  try {
    await client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: JSON.stringify({ job: JOB_MARK, clusterId: ref.clusterId }), ContentType: 'application/json', IfNoneMatch: '*', ...encryptionParams(s3) }),
      { abortSignal: signal },
    );
  } catch (err) {
    if (signal.aborted) throw err;
    const code = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
    if (code === 412 || code === 409) return;
    housekeeping.warn({ err, key }, `could not write ${key} (${describe(err)}); until it exists, format-2 objects are judged by this cluster's oldest stored snapshot`);
  }
}

/** The job's token has a short TTL; a retry after a long failed attempt renews it first. */
async function renewToken(vault: VaultClient, log: Logger, signal: AbortSignal): Promise<void> {
  try {
    await vault.write('auth/token/renew-self', {}, undefined, { idempotent: true, signal });
  } catch (err) {
    log.warn({ err }, 'could not renew the Vault token before retrying');
  }
}

function explain(err: unknown, runSignal: AbortSignal, jobSignal: AbortSignal, attempts: number): unknown {
  if (jobSignal.aborted) return err;
  if (runSignal.aborted && isAbortError(err)) {
    return new JobFailure('the snapshot did not finish within snapshot.deadlineSeconds; nothing was stored', { check: 'deadline', attempts });
  }
  if (err instanceof SnapshotVerificationError) {
    return new JobFailure(`the snapshot failed verification, nothing was stored: ${err.message}`, { check: err.check, attempts });
  }
  if (err instanceof S3UploadError) return new JobFailure(`${err.message}; nothing was stored`, { check: 's3-upload', attempts });
  if (err instanceof VaultError && err.status === 403) {
    return new JobFailure(`Vault denied the snapshot (${err.message}): the job’s policy needs read on sys/storage/raft/snapshot`, { check: 'vault-permission', attempts });
  }
  return err;
}

async function dryRun(ctx: Ctx, vault: VaultClient, client: S3Client, ref: ClusterRef, runId: string): Promise<Record<string, unknown>> {
  const { config, log } = ctx;
  const s3 = config.s3;
  const active = await vault.findActiveNode({ signal: ctx.signal }).catch(() => vault.currentNode);
  const now = new Date();
  const key = snapshotKey(ref, now, runId);
  log.info({ bucket: s3.bucket, key, node: active, encryption: encryptionParams(s3) }, 'dry run: would take a snapshot from this node and upload it here');
  let plan: RetentionPlan | undefined;
  if (config.retention.enabled) {
    // As if the new snapshot were already stored, which is what the real run decides with.
    const next: StoredObject = { key, clusterId: ref.clusterId, takenAt: now, size: 0, lastModified: now, meta: {} as StoredObject['meta'], recorded: true, encryption: undefined };
    plan = await retentionPlan(client, s3, ref, config.retention, ctx.signal, [next]);
    for (const p of plan.prune) log.info({ key: p.key, takenAt: p.takenAt.toISOString() }, 'dry run: would prune');
  }
  return {
    bucket: s3.bucket,
    wouldUpload: key,
    node: active,
    wouldPrune: plan?.prune.map((p) => p.key) ?? [],
    wouldKeep: plan?.keep.length ?? 0,
  };
}
