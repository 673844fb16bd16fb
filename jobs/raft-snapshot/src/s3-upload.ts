/**
 * The S3 side of a run: the snapshot streams through the verifier into a multipart upload under
 * .incoming/, and only a verified upload is committed (copied to its final name with the record of
 * what was verified). An upload that fails for any reason is aborted, so no partial object and no
 * orphaned multipart upload (which S3 bills for and never shows in a listing) is left behind.
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { JobFailure, withRetry, type Logger } from '@vaultkeeper/runtime';
import { connectSnapshot, SnapshotStreamError, type SnapshotSource } from './snapshot-stream.ts';
import { abortUpload, deleteObject, encryptionParams, JOB_MARK, listUploads, type S3Settings, type SnapshotMetadata } from './s3-store.ts';
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
  key: string;
  cluster: string;
  runId: string;
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
      // Each part carries its SHA-256 (x-amz-checksum-sha256); S3 recomputes it and refuses a part
      // that does not match, so what is stored is what left this process.
      ChecksumAlgorithm: 'SHA256',
      ...encryptionParams(s3),
      Metadata: { 'vaultkeeper-job': JOB_MARK, cluster: opts.cluster, 'run-id': opts.runId, state: 'incoming' },
    },
  });
  if (opts.onProgress) upload.on('httpUploadProgress', (p) => p.loaded !== undefined && opts.onProgress!(p.loaded));
  try {
    await upload.done();
  } catch (err) {
    if (!opts.source.body.destroyed) opts.source.body.destroy();
    // lib-storage aborts the multipart upload itself, but if that abort fails too (S3 down) it
    // throws the abort's error instead; the backstop below retries it.
    await discardIncoming(client, s3.bucket, key, log);
    const cause = sourceError ?? err;
    if (cause instanceof SnapshotVerificationError || cause instanceof SnapshotStreamError) throw cause;
    throw new S3UploadError(`uploading s3://${s3.bucket}/${key} failed`, err);
  }
  return verifier.result();
}

/**
 * Aborts every multipart upload of `key` and deletes `key` itself, retrying for a while when S3 is
 * briefly unreachable. Idempotent; used after a failed attempt, in cleanup after SIGTERM, and to
 * sweep what a killed run left under .incoming/.
 */
export async function discardIncoming(client: S3Client, bucket: string, key: string, log: Logger, deadlineMs = 20_000): Promise<boolean> {
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
        await deleteObject(client, bucket, key, signal);
        // Checked, not assumed: lib-storage may already have aborted it.
        log.info({ key, abortedNow: aborted }, 'staging upload discarded: no multipart upload or staged object left');
      },
      { deadlineMs, baseDelayMs: 500, maxDelayMs: 4_000, retryable: () => true },
    );
    return true;
  } catch (err) {
    log.error(
      { err, key },
      'could not abort the multipart upload; the next run aborts it (and a bucket lifecycle rule AbortIncompleteMultipartUpload is the last resort)',
    );
    return false;
  }
}

/** S3 CopyObject copies at most 5 GiB in one request; larger objects are copied part by part. */
export const SINGLE_COPY_LIMIT = 5 * 1024 ** 3;
const COPY_PART = 512 * 1024 ** 2;

/**
 * Commits a verified upload: a server-side copy to the final key with the full record as metadata
 * (S3 metadata is fixed when an object is created, and the whole-object SHA-256 is only known at
 * the end of the stream). If-None-Match: * means a commit never replaces an existing snapshot.
 */
export async function commitSnapshot(opts: {
  client: S3Client;
  s3: S3Settings;
  from: string;
  to: string;
  size: number;
  metadata: SnapshotMetadata;
  log: Logger;
  signal: AbortSignal;
  singleCopyLimit?: number;
  copyPartSize?: number;
}): Promise<void> {
  const { client, s3, from, to, signal } = opts;
  const common = {
    Bucket: s3.bucket,
    Key: to,
    ContentType: 'application/gzip',
    Metadata: { ...opts.metadata },
    ...encryptionParams(s3),
  };
  const source = `${s3.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`;
  if (opts.size <= (opts.singleCopyLimit ?? SINGLE_COPY_LIMIT)) {
    await client.send(
      new CopyObjectCommand({ ...common, CopySource: source, MetadataDirective: 'REPLACE', IfNoneMatch: '*', ChecksumAlgorithm: 'SHA256' }),
      { abortSignal: signal },
    );
  } else {
    const partSize = opts.copyPartSize ?? COPY_PART;
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ ...common, ChecksumAlgorithm: 'SHA256' }), { abortSignal: signal });
    try {
      const ranges: Array<{ n: number; start: number; end: number }> = [];
      for (let start = 0, n = 1; start < opts.size; start += partSize, n++) ranges.push({ n, start, end: Math.min(opts.size, start + partSize) - 1 });
      const parts: Array<{ PartNumber: number; ETag: string; ChecksumSHA256?: string }> = [];
      // Server-side part copies, s3.concurrency at a time (no data passes through the job).
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < ranges.length; i = next++) {
          const r = ranges[i]!;
          const res = await client.send(
            new UploadPartCopyCommand({ Bucket: s3.bucket, Key: to, UploadId, PartNumber: r.n, CopySource: source, CopySourceRange: `bytes=${r.start}-${r.end}` }),
            { abortSignal: signal },
          );
          parts.push({ PartNumber: r.n, ETag: res.CopyPartResult?.ETag ?? '', ...(res.CopyPartResult?.ChecksumSHA256 ? { ChecksumSHA256: res.CopyPartResult.ChecksumSHA256 } : {}) });
        }
      };
      await Promise.all(Array.from({ length: Math.min(s3.concurrency, ranges.length) }, worker));
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      await client.send(
        new CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: to, UploadId, MultipartUpload: { Parts: parts }, IfNoneMatch: '*' }),
        { abortSignal: signal },
      );
    } catch (err) {
      await abortUpload(client, s3.bucket, { key: to, uploadId: UploadId!, initiated: undefined }).catch(() => undefined);
      throw err;
    }
  }
  // What S3 now says it holds must be what was verified.
  const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: to, ChecksumMode: 'ENABLED' }), { abortSignal: signal });
  // A store that says it keeps a full-object SHA-256 (AWS after a single CopyObject) lets us compare
  // its own hash with ours. A composite one (a hash of part hashes) cannot be compared, and some
  // S3-compatible stores (moto among them) return one without saying so: compare only on FULL_OBJECT.
  const stored = head.ChecksumSHA256 && head.ChecksumType === 'FULL_OBJECT' ? Buffer.from(head.ChecksumSHA256, 'base64').toString('hex') : undefined;
  if (head.ContentLength !== opts.size || head.Metadata?.sha256 !== opts.metadata.sha256 || (stored && stored !== opts.metadata.sha256)) {
    await deleteObject(client, s3.bucket, to).catch(() => undefined);
    throw new JobFailure(`the committed object s3://${s3.bucket}/${to} does not match what was uploaded; removed it`, {
      check: 'commit',
      expectedBytes: opts.size,
      storedBytes: head.ContentLength,
      storeChecksumMatches: stored ? stored === opts.metadata.sha256 : 'not available',
    });
  }
  opts.log.debug({ key: to, storeChecksum: stored ? 'matches' : 'not comparable' }, 'commit checked');
  await deleteObject(client, s3.bucket, from, signal).catch((err: unknown) =>
    opts.log.warn({ err, key: from }, 'could not delete the upload staging object; the next run removes it'),
  );
}
