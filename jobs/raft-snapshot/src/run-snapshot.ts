/**
 * The default command: lock, snapshot + verify + upload (retried from the start on the active node
 * of the moment), commit (the record beside the snapshot), prune. Retention runs only after a
 * successful commit.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { JobFailure, isAbortError, withRetry, type JobContext, type Logger } from '@vaultkeeper/runtime';
import { VaultError, type VaultClient } from '@vaultkeeper/vault';
import { clusterInfo } from './cluster-info.ts';
import type { jobConfig } from './config.ts';
import { acquireLock } from './lock.ts';
import { clusterPrefix, lockKey, newRunId, recordKey, snapshotKey } from './object-name.ts';
import { planRetention, type RetentionPlan, type RetentionPolicy } from './retention.ts';
import {
  FORMAT_VERSION,
  JOB_MARK,
  VERIFIED_CHECKS,
  abortUpload,
  deleteObjects,
  encryptionParams,
  isCommitted,
  listUploads,
  scanCluster,
  type ClusterScan,
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
  const { cluster, version } = await clusterInfo(vault, config.snapshot.cluster, log, signal);
  const runId = newRunId();
  const takenAt = new Date(started);
  const key = snapshotKey(s3.prefix, cluster, takenAt, runId);

  if (ctx.dryRun) return dryRun(ctx, vault, client, cluster, runId);

  const lock = await acquireLock({
    client,
    bucket: s3.bucket,
    key: lockKey(s3.prefix, cluster),
    runId,
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
  // other run adds or removes objects, so a listing taken now is still right after the commit.
  const scanned = scanCluster(client, s3, cluster, signal);
  const swept = scanned.then((scan) => sweepLeftovers(client, s3, cluster, key, scan, log, signal));
  swept.catch(() => undefined);

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
      format: Number(FORMAT_VERSION),
      key,
      cluster,
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
  if (config.retention.enabled) {
    const plan = planOver((await scanned).snapshots, key, takenAt, config.retention);
    // The object just written must be among the kept; if it is not, something is off: prune nothing.
    if (!plan.keep.some((k) => k.key === key)) {
      log.error({ key }, 'the new snapshot is not in the retention plan; pruning nothing');
    } else {
      pruned = await pruneSnapshots(client, s3.bucket, plan.prune.map((p) => p.key), log, signal);
      kept = plan.keep.length;
    }
    ctx.metrics.gauge('stored_objects', 'Verified snapshots of this cluster in the bucket after pruning.').set(kept);
    ctx.metrics.gauge('pruned_objects', 'Snapshots pruned by the last run.').set(pruned.length);
  }

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
    kept,
    pruned: pruned.length,
  };
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
  cluster: string,
  policy: { keepLast: number; daily: number; weekly: number; monthly: number },
  signal: AbortSignal,
  extra: StoredObject[] = [],
): Promise<RetentionPlan> {
  const stored = [...(await scanCluster(client, s3, cluster, signal)).snapshots, ...extra];
  const ours = stored.filter(isCommitted);
  return planRetention(
    ours.map((o) => ({ key: o.key, takenAt: o.takenAt })),
    policy,
  );
}

/**
 * Deletes snapshots and their records, record first: a snapshot whose deletion fails then has no
 * record, is no longer counted, and is removed by the next run.
 */
async function pruneSnapshots(client: S3Client, bucket: string, keys: string[], log: Logger, signal: AbortSignal): Promise<string[]> {
  await deleteObjects(client, bucket, keys.map(recordKey), signal);
  const deleted = await deleteObjects(client, bucket, keys, signal);
  for (const key of deleted) log.info({ key }, 'pruned');
  return deleted;
}

/**
 * What a killed run (SIGKILL, OOM, node loss) or a failed cleanup left behind: multipart uploads
 * never completed, snapshots of ours never committed (no record), records without a snapshot.
 * Safe to remove while we hold the lock, since no other run exists.
 */
async function sweepLeftovers(client: S3Client, s3: S3Settings, cluster: string, ours: string, scan: ClusterScan, log: Logger, signal: AbortSignal): Promise<void> {
  for (const u of await listUploads(client, s3.bucket, clusterPrefix(s3.prefix, cluster), signal)) {
    if (u.key === ours) continue;
    await abortUpload(client, s3.bucket, u, signal);
    log.warn({ key: u.key, uploadId: u.uploadId, initiated: u.initiated?.toISOString() }, 'aborted a multipart upload left by an earlier run');
  }
  const uncommitted = scan.snapshots.filter((o) => o.meta && !o.recorded && o.key !== ours).map((o) => o.key);
  for (const key of await deleteObjects(client, s3.bucket, [...uncommitted, ...scan.strayRecords], signal)) {
    log.warn({ key }, 'removed what an earlier run left uncommitted');
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

async function dryRun(ctx: Ctx, vault: VaultClient, client: S3Client, cluster: string, runId: string): Promise<Record<string, unknown>> {
  const { config, log } = ctx;
  const s3 = config.s3;
  const active = await vault.findActiveNode({ signal: ctx.signal }).catch(() => vault.currentNode);
  const now = new Date();
  const key = snapshotKey(s3.prefix, cluster, now, runId);
  log.info({ bucket: s3.bucket, key, node: active, encryption: encryptionParams(s3) }, 'dry run: would take a snapshot from this node and upload it here');
  let plan: RetentionPlan | undefined;
  if (config.retention.enabled) {
    // As if the new snapshot were already stored, which is what the real run decides with.
    const next: StoredObject = { key, takenAt: now, size: 0, lastModified: now, meta: {} as StoredObject['meta'], recorded: true, encryption: undefined };
    plan = await retentionPlan(client, s3, cluster, config.retention, ctx.signal, [next]);
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
