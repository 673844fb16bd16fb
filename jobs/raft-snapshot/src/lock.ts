/**
 * One run at a time per cluster. A CronJob with concurrencyPolicy: Forbid already prevents
 * overlap, but a manual `kubectl create job --from=cronjob/...` does not go through that policy.
 * Two runs interleaving would race on retention (one pruning what the other just counted on), so
 * each run takes a lock object with a conditional write (PutObject If-None-Match: *; AWS S3 since
 * 2024-08, MinIO, Ceph RGW): exactly one writer can create it. A lock whose holder died (OOM kill,
 * node loss) is taken over once its recorded expiry has passed; the expiry is the holder's own
 * deadline plus its shutdown grace, after which the holder cannot be running any more.
 * The lock is per cluster (in its cluster_id's folder): clusters that share a name never wait for
 * each other. It is written with the same encryption headers as the snapshot, so that a bucket
 * policy requiring SSE-KMS on every PutObject refuses it no more than the snapshot.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3ServiceException, type S3Client, type ServerSideEncryption } from '@aws-sdk/client-s3';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobFailure, z, type Logger } from '@vaultkeeper/runtime';


const lockBody = z.object({
  runId: z.string(),
  clusterId: z.string().optional(),
  host: z.string(),
  pid: z.number(),
  startedAt: z.string(),
  expiresAt: z.string(),
});
export type LockInfo = z.infer<typeof lockBody>;

export interface HeldLock {
  key: string;
  etag: string;
  info: LockInfo;
  release(): Promise<void>;
}

const status = (err: unknown) => (err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined);

export async function readLock(client: S3Client, bucket: string, key: string): Promise<(LockInfo & { etag: string }) | undefined> {
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const parsed = lockBody.safeParse(JSON.parse((await res.Body?.transformToString()) ?? ''));
    // An unreadable lock is still a lock: report it as expiring now so that a run can take it over.
    const info = parsed.success ? parsed.data : { runId: '?', host: '?', pid: 0, startedAt: '?', expiresAt: new Date(0).toISOString() };
    return { ...info, etag: res.ETag ?? '' };
  } catch (err) {
    if (status(err) === 404) return undefined;
    throw err;
  }
}

export async function acquireLock(opts: {
  client: S3Client;
  bucket: string;
  key: string;
  runId: string;
  clusterId: string;
  /** The SSE headers every object of the job carries (encryptionParams). */
  encryption: { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string };
  holdSeconds: number;
  waitSeconds: number;
  log: Logger;
  signal: AbortSignal;
}): Promise<HeldLock> {
  const { client, bucket, key, log } = opts;
  const waitUntil = Date.now() + opts.waitSeconds * 1000;
  for (let attempt = 1; ; attempt++) {
    const now = new Date();
    const info: LockInfo = {
      runId: opts.runId,
      clusterId: opts.clusterId,
      host: hostname(),
      pid: process.pid,
      startedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + opts.holdSeconds * 1000).toISOString(),
    };
    try {
      const put = await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: JSON.stringify(info), ContentType: 'application/json', IfNoneMatch: '*', ...opts.encryption }),
        { abortSignal: opts.signal },
      );
      const etag = put.ETag ?? '';
      log.info({ lock: key, expiresAt: info.expiresAt }, 'lock taken');
      return {
        key,
        etag,
        info,
        release: async () => {
          // Only our own lock: If-Match makes the delete a no-op (412) if someone took it over.
          try {
            await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }), { abortSignal: AbortSignal.timeout(15_000) });
            log.info({ lock: key }, 'lock released');
          } catch (err) {
            if (status(err) === 412 || status(err) === 404) log.warn({ lock: key }, 'lock was no longer ours; left alone');
            else throw err;
          }
        },
      };
    } catch (err) {
      // 412: someone holds it. 409: a concurrent conditional write on AWS; same meaning.
      if (status(err) !== 412 && status(err) !== 409) throw err;
    }
    const holder = await readLock(client, bucket, key);
    if (!holder) continue; // released between our two calls
    if (new Date(holder.expiresAt).getTime() < Date.now()) {
      log.warn({ lock: key, holder: { runId: holder.runId, host: holder.host, startedAt: holder.startedAt, expiresAt: holder.expiresAt } }, 'taking over an expired lock');
      try {
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, IfMatch: holder.etag }), { abortSignal: opts.signal });
      } catch (err) {
        if (status(err) !== 412 && status(err) !== 404) throw err;
      }
      continue;
    }
    if (Date.now() >= waitUntil || attempt > 10_000) {
      throw new JobFailure('another snapshot run of this cluster is in progress; not starting a second one', {
        check: 'lock',
        lock: key,
        holder: { runId: holder.runId, host: holder.host, pid: holder.pid, startedAt: holder.startedAt, expiresAt: holder.expiresAt },
      });
    }
    log.info({ lock: key, holder: holder.runId }, 'waiting for the running snapshot to finish');
    await sleep(Math.min(5_000, Math.max(100, waitUntil - Date.now())), undefined, { signal: opts.signal });
  }
}


