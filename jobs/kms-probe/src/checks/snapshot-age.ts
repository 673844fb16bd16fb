// Is the newest verified Raft snapshot in S3 younger than the threshold? The raft-snapshot job
// writes a record object (<snapshot>.json) beside a snapshot only once the snapshot was verified
// and stored, so a snapshot with its record beside it counts as verified. One paginated listing
// answers it (a bucket past 1,000 objects must not hide the newest one); no object is read.
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
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
  /** A snapshot counts when an object named <key><suffix> exists; empty: every object counts. */
  verifiedRecordSuffix: string;
  callTimeoutSeconds: number;
  /** Stop listing after this many pages (1,000 keys each): the probe stays cheap on any bucket. */
  maxPages?: number;
}

export async function checkSnapshotAge(input: SnapshotAgeInput, signal: AbortSignal, now = Date.now()): Promise<CheckOutcome> {
  const where = `s3://${input.bucket}/${input.prefix}`;
  const suffix = input.verifiedRecordSuffix;
  const objects: Array<{ key: string; modified: number }> = [];
  const keys = new Set<string>();
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await input.s3.send(
      new ListObjectsV2Command({ Bucket: input.bucket, Prefix: input.prefix || undefined, ContinuationToken: token }),
      { abortSignal: callSignal(signal, input.callTimeoutSeconds) },
    );
    for (const o of page.Contents ?? []) {
      if (!o.Key || !o.LastModified || o.Key.endsWith('/')) continue;
      keys.add(o.Key);
      if (!suffix || !o.Key.endsWith(suffix)) objects.push({ key: o.Key, modified: o.LastModified.getTime() });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && ++pages < (input.maxPages ?? 100));
  if (!objects.length) return failed('stale', `no snapshot under ${where}`);

  // Newest first; S3 times have one-second resolution, and the raft-snapshot job names objects
  // so that they sort by time, so the key breaks ties.
  objects.sort((a, b) => b.modified - a.modified || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
  const newestIndex = suffix ? objects.findIndex((o) => keys.has(`${o.key}${suffix}`)) : 0;
  const newest = newestIndex >= 0 ? objects[newestIndex] : undefined;
  const unverified = newest ? newestIndex : objects.length;
  if (!newest) {
    return failed('stale', `none of the ${unverified} objects under ${where} is a verified snapshot (no ${suffix} record beside it)`);
  }
  const age = (now - newest.modified) / 1000;
  const details = { key: newest.key, lastModified: new Date(newest.modified).toISOString(), ageSeconds: Math.round(age), objects: objects.length };
  const notes = unverified ? [`${unverified} newer object(s) without a ${suffix} record ignored`] : [];
  if (age > input.maxAgeSeconds) {
    return failed('stale', `newest verified snapshot is ${formatDuration(age)} old (limit ${formatDuration(input.maxAgeSeconds)})`, { notes, details });
  }
  return { status: notes.length ? 'warn' : 'ok', summary: `newest verified snapshot ${formatDuration(age)} old`, ...(notes.length ? { notes } : {}), details };
}
