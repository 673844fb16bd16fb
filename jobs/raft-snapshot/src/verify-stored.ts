/**
 * `verify [<key>]`: downloads a stored snapshot (default: the newest verified one) and checks it
 * the way the upload was checked (gzip, tar, every member against SHA256SUMS, the sealed manifest),
 * then against the record stored beside it (whole-object SHA-256, size, Raft index and term).
 */
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { clusterFolder, normalizePrefix, parseSnapshotKey, readMetadata, sanitizeClusterId } from '@vaultkeeper/records';
import { JobFailure, type JobContext } from '@vaultkeeper/runtime';
import type { jobConfig } from './config.ts';
import { clusterNames } from './list-snapshots.ts';
import { isCommitted, readRecord, scanCluster, type StoredObject } from './s3-store.ts';
import { ArchiveVerifier, SnapshotVerificationError } from './verify-archive.ts';

type Ctx = JobContext<(typeof jobConfig)['shape']>;

export async function verifyCommand(ctx: Ctx, client: S3Client): Promise<Record<string, unknown>> {
  const { config, log } = ctx;
  const s3 = config.s3;
  const key = ctx.positionals[0] ?? (await newestKey(ctx, client));
  const cluster = key.slice(normalizePrefix(s3.prefix).length).split('/')[0] ?? '';
  const parsed = parseSnapshotKey(key, s3.prefix, cluster);
  const res = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }), { abortSignal: ctx.signal });
  const meta = parsed && readMetadata(res.Metadata, cluster, parsed.clusterId);
  const problems: string[] = [];
  if (!parsed) problems.push(`${key} is not named like a snapshot of this job under ${normalizePrefix(s3.prefix)}`);
  const record = await readRecord(client, s3.bucket, key, ctx.signal).catch((err: unknown) => {
    problems.push(`its record is unreadable: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  });
  const verifier = new ArchiveVerifier();
  let check: string | undefined;
  try {
    await pipeline(res.Body as NodeJS.ReadableStream, verifier, new Writable({ write: (_c, _e, cb) => cb() }), { signal: ctx.signal });
  } catch (err) {
    if (!(err instanceof SnapshotVerificationError)) throw err;
    problems.push(err.message);
    check = err.check;
  }
  const report = problems.length ? undefined : verifier.result();
  if (!meta) problems.push('the object does not carry this job’s metadata (not written by it, or its metadata was changed)');
  if (!record && !problems.some((p) => p.startsWith('its record'))) problems.push(`it has no record (${key}.json): the run that wrote it never committed it`);
  if (record && parsed?.clusterId && (record.format !== 3 || record.clusterId !== parsed.clusterId)) {
    problems.push(`the record names another cluster than the folder it is in (${parsed.clusterId})`);
  }
  if (report && record) {
    if (record.sha256 !== report.sha256) problems.push(`SHA-256 is ${report.sha256}, the record says ${record.sha256}`);
    if (record.size !== report.bytes) problems.push(`size is ${report.bytes}, the record says ${record.size}`);
    if (record.raftIndex !== report.meta.index || record.raftTerm !== report.meta.term) {
      problems.push(`meta.json says index ${report.meta.index} term ${report.meta.term}, the record says ${record.raftIndex}/${record.raftTerm}`);
    }
  }
  if (report && meta && (meta['raft-index'] !== report.meta.index || meta['raft-term'] !== report.meta.term)) {
    problems.push(`meta.json says index ${report.meta.index} term ${report.meta.term}, the object metadata says ${meta['raft-index']}/${meta['raft-term']}`);
  }
  const result = {
    recordRun: false,
    bucket: s3.bucket,
    key,
    verified: problems.length === 0,
    bytes: report?.bytes,
    sha256: report?.sha256,
    raftIndex: report?.meta.index,
    raftTerm: report?.meta.term,
    takenAt: record?.takenAt,
    clusterId: parsed?.clusterId,
    ...(problems.length ? { problems, check: check ?? 'record' } : {}),
  };
  if (problems.length) {
    log.error({ key, problems }, 'the stored snapshot failed verification: do not rely on it for a restore');
    return { ...result, outcome: 'failure' };
  }
  log.info({ key, bytes: report!.bytes, raftIndex: report!.meta.index }, 'the stored snapshot is intact and matches its record');
  return result;
}

async function newestKey(ctx: Ctx, client: S3Client): Promise<string> {
  const s3 = ctx.config.s3;
  const clusters = await clusterNames(ctx, client);
  if (clusters.length !== 1) {
    throw new JobFailure(
      clusters.length ? `the bucket holds several clusters (${clusters.join(', ')}): name one with snapshot.cluster or give a key` : 'no snapshots found under the prefix',
    );
  }
  const cluster = clusters[0]!;
  const onlyId = ctx.config.snapshot.clusterId ? sanitizeClusterId(ctx.config.snapshot.clusterId) : undefined;
  const scan = await scanCluster(client, s3, cluster, onlyId, ctx.signal);
  // Without a cluster id, only a folder of one cluster has an unambiguous "newest".
  if (!onlyId && scan.clusterIds.length > 1) {
    throw new JobFailure(
      `several clusters share the folder ${clusterFolder(s3.prefix, cluster)} (cluster ids ${scan.clusterIds.join(', ')}): name one with snapshot.clusterId or give a key`,
    );
  }
  const newest: StoredObject | undefined = scan.snapshots.filter(isCommitted).at(-1);
  if (!newest) throw new JobFailure(`no verified snapshot of ${cluster}${onlyId ? ` (${onlyId})` : ''} found in s3://${s3.bucket}/${clusterFolder(s3.prefix, cluster)}`);
  return newest.key;
}
