/**
 * `list`: what is stored, for the operator on a bad day. Needs only S3 (Vault may be the thing
 * that is down): the cluster comes from config (made safe for keys exactly as `snapshot` does), or
 * every cluster folder under the prefix is shown; each cluster id of a name is shown apart.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { clusterFolder, legacyLockKey, lockKey, normalizePrefix, sanitizeCluster, sanitizeClusterId } from '@vaultkeeper/records';
import type { JobContext } from '@vaultkeeper/runtime';
import type { jobConfig } from './config.ts';
import { readLock } from './lock.ts';
import { isCommitted, listUploads, scanCluster, type S3Settings, type StoredObject } from './s3-store.ts';

type Ctx = JobContext<(typeof jobConfig)['shape']>;

export async function clustersInBucket(client: S3Client, s3: S3Settings, signal: AbortSignal): Promise<string[]> {
  const prefix = normalizePrefix(s3.prefix);
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }), {
      abortSignal: signal,
    });
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) out.push(p.Prefix.slice(prefix.length, -1));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** The cluster folders `list` and `verify` look at: the configured name as `snapshot` writes it, else every one. */
export async function clusterNames(ctx: Ctx, client: S3Client): Promise<string[]> {
  const configured = ctx.config.snapshot.cluster;
  return configured ? [sanitizeCluster(configured)] : clustersInBucket(client, ctx.config.s3, ctx.signal);
}

export async function listCommand(ctx: Ctx, client: S3Client): Promise<Record<string, unknown>> {
  const s3 = ctx.config.s3;
  const clusters = await clusterNames(ctx, client);
  const onlyId = ctx.config.snapshot.clusterId ? sanitizeClusterId(ctx.config.snapshot.clusterId) : undefined;
  const now = Date.now();
  const rows: string[][] = [['CLUSTER', 'CLUSTER ID', 'TAKEN (UTC)', 'AGE', 'SIZE', 'RAFT INDEX', 'VERIFIED', 'KEY']];
  const summary: Array<Record<string, unknown>> = [];
  let newest: number | undefined;
  for (const cluster of clusters) {
    const scan = await scanCluster(client, s3, cluster, onlyId, ctx.signal);
    const idOf = (o: StoredObject) => o.clusterId ?? (scan.clusterIds.length > 1 ? 'unknown (format 2)' : (scan.clusterIds[0] ?? 'unknown (format 2)'));
    for (const o of scan.snapshots.toReversed()) {
      const ageSeconds = Math.round((now - o.takenAt.getTime()) / 1000);
      if (isCommitted(o)) newest = Math.max(newest ?? 0, o.takenAt.getTime());
      rows.push([cluster, idOf(o), o.takenAt.toISOString().replace('.000Z', 'Z'), age(ageSeconds), bytes(o.size), o.meta?.['raft-index'] ?? '-', verifiedColumn(o), o.key]);
      summary.push({ cluster, clusterId: o.clusterId, key: o.key, takenAt: o.takenAt.toISOString(), ageSeconds, bytes: o.size, raftIndex: o.meta?.['raft-index'], verified: isCommitted(o), encryption: o.encryption });
    }
    const uploads = await listUploads(client, s3.bucket, onlyId ? `${clusterFolder(s3.prefix, cluster)}${onlyId}/` : clusterFolder(s3.prefix, cluster), ctx.signal);
    for (const u of uploads) rows.push([cluster, '-', u.initiated?.toISOString() ?? '?', '-', '-', '-', 'in progress (multipart upload)', u.key]);
    const lockKeys = [...(onlyId ? [onlyId] : scan.clusterIds).map((clusterId) => lockKey({ prefix: s3.prefix, cluster, clusterId })), legacyLockKey(s3.prefix, cluster)];
    for (const key of lockKeys) {
      const lock = await readLock(client, s3.bucket, key);
      if (lock) rows.push([cluster, lock.clusterId ?? '-', lock.startedAt, '-', '-', '-', `locked by run ${lock.runId} on ${lock.host} until ${lock.expiresAt}`, key]);
    }
    if (scan.clusterIds.length > 1) {
      ctx.log.warn({ folder: clusterFolder(s3.prefix, cluster), clusterIds: scan.clusterIds }, 'several clusters share this cluster name’s folder: each has its own snapshots (CLUSTER ID)');
    }
  }
  if (newest !== undefined) {
    ctx.metrics.gauge('latest_object_timestamp_seconds', 'Unix time the newest verified snapshot in the bucket was taken.').set(newest / 1000);
    ctx.metrics.gauge('latest_object_age_seconds', 'Age of the newest verified snapshot when the run ended.').set((now - newest) / 1000);
  }
  // A table for the person at the terminal; stdout stays JSON log lines.
  process.stderr.write(table(rows) + `\n${summary.length} snapshot(s) in s3://${s3.bucket}/${normalizePrefix(s3.prefix)}\n`);
  return { recordRun: false, bucket: s3.bucket, clusters, count: summary.length, snapshots: summary.slice(0, 100) };
}

function verifiedColumn(o: StoredObject): string {
  if (!o.meta) return 'no (not written by this job)';
  return o.recorded ? 'yes' : 'no (never committed: the next run removes it)';
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
