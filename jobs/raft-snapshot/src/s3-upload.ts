/**
 * The S3 side of a run. The snapshot streams through the verifier straight into a multipart
 * upload under its final name; S3 shows nothing under that name until CompleteMultipartUpload,
 * which lib-storage sends only after the stream has ended, that is after every check has passed.
 * A record object beside it (<key>.json) is then written: its existence is what makes the snapshot
 * a committed one. A failure at any point aborts the upload, or deletes what was completed, so no
 * partial object and no orphaned multipart upload (which S3 bills for and never lists) is left.
 *
 * Why not upload to a staging key and copy to the final one with the SHA-256 as metadata (S3 fixes
 * user metadata when an upload starts, and the hash is known only at its end)? The copy re-reads
 * and re-writes every byte on the server (a third of the run's time on the local stack), doubles
 * the writes a versioned bucket keeps, and on an Object Lock bucket leaves undeletable staging
 * copies. Object tags would do without a copy, but DigitalOcean Spaces and Cloudflare R2 do not
 * implement them. A small record object works on every S3-compatible store.
 */
import { HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { JobFailure, withRetry, type Logger } from '@vaultkeeper/runtime';
import { recordKey, type SnapshotMetadata, type SnapshotRecord } from '@vaultkeeper/records';
import { connectSnapshot, SnapshotStreamError, type SnapshotSource } from './snapshot-stream.ts';
import { abortUpload, deleteObject, encryptionParams, listUploads, type S3Settings } from './s3-store.ts';
import { ArchiveVerifier, SnapshotVerificationError, type ArchiveReport } from './verify-archive.ts';

/** The upload itself failed (S3 unreachable, denied, out of space), not the snapshot. */
export class S3UploadError extends Error {
  override readonly name = 'S3UploadError';
  constructor(message: string, cause: unknown) {
    super(`${message}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface StreamUploadOptions {
  client: S3Client;
  s3: S3Settings;
  /** The snapshot's final key: unique to the run, so nothing else can be there. */
  key: string;
  /** What the object records about itself, except what only meta.json tells (Raft index and term). */
  metadata: Omit<SnapshotMetadata, 'raft-index' | 'raft-term'>;
  source: SnapshotSource;
  log: Logger;
  onProgress?: (bytes: number) => void;
}

/** Streams, verifies and uploads one snapshot to `key`; resolves with the verified facts. */
export async function streamToS3(opts: StreamUploadOptions): Promise<ArchiveReport> {
  const { client, s3, key, log } = opts;
  const verifier = new ArchiveVerifier();
  let sourceError: Error | undefined;
  verifier.on('error', (err) => (sourceError ??= err));
  connectSnapshot(opts.source, verifier);
  // meta.json comes first and is a few hundred bytes: the upload starts once it is read, so the
  // object's metadata names the Raft index and term it holds.
  const meta = await verifier.meta.catch((err: unknown) => {
    if (!opts.source.body.destroyed) opts.source.body.destroy();
    throw sourceError ?? err;
  });
  const upload = new Upload({
    client,
    partSize: s3.partSizeMiB * 1024 * 1024,
    queueSize: s3.concurrency,
    leavePartsOnError: false,
    params: {
      Bucket: s3.bucket,
      Key: key,
      Body: verifier,
      ContentType: 'application/gzip',
      // Each part carries its CRC32 (x-amz-checksum-crc32); S3 recomputes it and refuses a part
      // that does not match, so what is stored is what left this process. CRC32, not SHA-256: it
      // guards the transfer as well, costs S3 and this process far less CPU (the whole object's
      // SHA-256, computed here anyway, goes into the record), and is the SDK's own default.
      ChecksumAlgorithm: 'CRC32',
      // Never replace an object (sent with PutObject and CompleteMultipartUpload alike).
      IfNoneMatch: '*',
      ...encryptionParams(s3),
      Metadata: { ...opts.metadata, 'raft-index': meta.index, 'raft-term': meta.term },
    },
  });
  if (opts.onProgress) upload.on('httpUploadProgress', (p) => p.loaded !== undefined && opts.onProgress!(p.loaded));
  try {
    await upload.done();
  } catch (err) {
    if (!opts.source.body.destroyed) opts.source.body.destroy();
    log.warn({ err: sourceError ?? err, key }, 'the upload failed; discarding it');
    // lib-storage aborts the multipart upload itself, but if that abort fails too (S3 down) it
    // throws the abort's error instead; the backstop below retries it.
    await discardSnapshot(client, s3.bucket, key, log);
    const cause = sourceError ?? err;
    if (cause instanceof SnapshotVerificationError || cause instanceof SnapshotStreamError) throw cause;
    throw new S3UploadError(`uploading s3://${s3.bucket}/${key} failed`, err);
  }
  return verifier.result();
}

/**
 * Aborts every multipart upload of `key` and deletes `key` and its record, retrying for a while
 * when S3 is briefly unreachable. Idempotent; used after a failed attempt, in cleanup after
 * SIGTERM or a failed commit, and by the next run for what a killed run left behind.
 */
export async function discardSnapshot(client: S3Client, bucket: string, key: string, log: Logger, deadlineMs = 20_000): Promise<boolean> {
  try {
    await withRetry(
      async () => {
        const signal = AbortSignal.timeout(10_000);
        let aborted = 0;
        for (const u of await listUploads(client, bucket, key, signal)) {
          if (u.key !== key) continue;
          await abortUpload(client, bucket, u, signal);
          aborted++;
          log.info({ key, uploadId: u.uploadId }, 'multipart upload aborted');
        }
        // The record first: a snapshot without one is never taken for a committed one.
        await deleteObject(client, bucket, recordKey(key), signal);
        await deleteObject(client, bucket, key, signal);
        // Checked, not assumed: lib-storage may already have aborted it.
        log.info({ key, abortedNow: aborted }, 'snapshot discarded: no multipart upload, object or record left');
      },
      { deadlineMs, baseDelayMs: 500, maxDelayMs: 4_000, retryable: () => true },
    );
    return true;
  } catch (err) {
    log.error(
      { err, key },
      'could not discard the failed snapshot; the next run removes it (and a bucket lifecycle rule AbortIncompleteMultipartUpload is the last resort)',
    );
    return false;
  }
}

/**
 * Commits a stored snapshot: checks that what S3 holds under `key` is what was verified, then
 * writes the record beside it. Until the record exists the snapshot does not count (list, verify,
 * retention and kms-probe all look for it), so a run that dies in between leaves nothing that
 * passes for a good snapshot, and the next run removes the leftover.
 */
export async function commitSnapshot(opts: { client: S3Client; s3: S3Settings; record: SnapshotRecord; log: Logger; signal: AbortSignal }): Promise<void> {
  const { client, s3, record, signal } = opts;
  const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: record.key }), { abortSignal: signal });
  if (head.ContentLength !== record.size || head.Metadata?.['run-id'] !== record.runId) {
    throw new JobFailure(`the stored object s3://${s3.bucket}/${record.key} does not match what was uploaded; it is discarded, nothing was stored`, {
      check: 'commit',
      expectedBytes: record.size,
      storedBytes: head.ContentLength,
    });
  }
  await client.send(
    new PutObjectCommand({
      Bucket: s3.bucket,
      Key: recordKey(record.key),
      Body: `${JSON.stringify(record, null, 2)}\n`,
      ContentType: 'application/json',
      ChecksumAlgorithm: 'SHA256',
      IfNoneMatch: '*',
      ...encryptionParams(s3),
    }),
    { abortSignal: signal },
  );
  opts.log.debug({ key: record.key }, 'record written');
}
