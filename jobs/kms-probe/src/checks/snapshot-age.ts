// Is the newest verified Raft snapshot in S3 younger than the threshold? The raft-snapshot job
// commits an object only after verifying it and records its SHA-256 as user metadata, so an
// object carrying that metadata key counts as verified. Lists with pagination (a bucket past
// 1,000 objects must not hide the newest one) and reads the metadata of the newest few only.
import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
// The S3 module alone: importing the package's index here would load the S3 SDK at start-up.
import { createS3Client } from '@vaultkeeper/aws/s3';
import { failed, type CheckOutcome } from '../check.ts';
import { callSignal, probeClientOptions, type ProbeClientOptions } from '../aws-clients.ts';
import { formatDuration } from '../format-duration.ts';

export function createProbeS3Client(opts: ProbeClientOptions & { forcePathStyle: boolean }): S3Client {
  return createS3Client({ ...probeClientOptions(opts), forcePathStyle: opts.forcePathStyle });
}

export interface SnapshotAgeInput {
  s3: S3Client;
  bucket: string;
  prefix: string;
  maxAgeSeconds: number;
  verifiedMetadataKey: string;
  callTimeoutSeconds: number;
  /** Stop listing after this many pages (1,000 keys each): the probe stays cheap on any bucket. */
  maxPages?: number;
  /** HeadObject at most this many of the newest objects looking for a verified one. */
  maxHeads?: number;
}

export async function checkSnapshotAge(input: SnapshotAgeInput, signal: AbortSignal, now = Date.now()): Promise<CheckOutcome> {
  const where = `s3://${input.bucket}/${input.prefix}`;
  const objects: Array<{ key: string; modified: number }> = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await input.s3.send(
      new ListObjectsV2Command({ Bucket: input.bucket, Prefix: input.prefix || undefined, ContinuationToken: token }),
      { abortSignal: callSignal(signal, input.callTimeoutSeconds) },
    );
    for (const o of page.Contents ?? []) if (o.Key && o.LastModified && !o.Key.endsWith('/')) objects.push({ key: o.Key, modified: o.LastModified.getTime() });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && ++pages < (input.maxPages ?? 100));
  if (!objects.length) return failed('stale', `no snapshot under ${where}`);

  // Newest first; S3 times have one-second resolution, and the raft-snapshot job names objects
  // so that they sort by time, so the key breaks ties.
  objects.sort((a, b) => b.modified - a.modified || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
  let newest: { key: string; modified: number } | undefined;
  let unverified = 0;
  if (!input.verifiedMetadataKey) newest = objects[0];
  else {
    const wanted = input.verifiedMetadataKey.toLowerCase();
    for (const o of objects.slice(0, input.maxHeads ?? 5)) {
      const head = await input.s3.send(new HeadObjectCommand({ Bucket: input.bucket, Key: o.key }), {
        abortSignal: callSignal(signal, input.callTimeoutSeconds),
      });
      if (Object.keys(head.Metadata ?? {}).some((k) => k.toLowerCase() === wanted)) {
        newest = o;
        break;
      }
      unverified++;
    }
  }
  if (!newest) {
    return failed('stale', `none of the ${unverified} newest objects under ${where} is a verified snapshot (metadata ${input.verifiedMetadataKey})`);
  }
  const age = (now - newest.modified) / 1000;
  const details = { key: newest.key, lastModified: new Date(newest.modified).toISOString(), ageSeconds: Math.round(age), objects: objects.length };
  const notes = unverified ? [`${unverified} newer object(s) without ${input.verifiedMetadataKey} metadata ignored`] : [];
  if (age > input.maxAgeSeconds) {
    return failed('stale', `newest verified snapshot is ${formatDuration(age)} old (limit ${formatDuration(input.maxAgeSeconds)})`, { notes, details });
  }
  return { status: notes.length ? 'warn' : 'ok', summary: `newest verified snapshot ${formatDuration(age)} old`, ...(notes.length ? { notes } : {}), details };
}
