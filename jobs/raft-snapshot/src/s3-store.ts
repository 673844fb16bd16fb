/**
 * The bucket as this job sees it: one S3 client, the metadata the job writes on every snapshot,
 * and paginated listings (ListObjectsV2 and ListMultipartUploads return at most 1,000 entries a
 * page; retention that reads only the first page silently stops pruning past 1,000 objects).
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
  S3ServiceException,
  ListObjectsV2Command,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { createS3Client as createAwsS3Client } from '@vaultkeeper/aws';
import {
  RECORD_SUFFIX,
  clusterFolder,
  clusterIdsIn,
  clusterScope,
  legacyLockKey,
  listFolder,
  parseSnapshotKey,
  readMetadata,
  recordKey,
  snapshotRecord,
  type ClusterScope,
  type SnapshotMetadata,
  type SnapshotRecord,
} from '@vaultkeeper/records';
import { registerSecret, z, type Logger } from '@vaultkeeper/runtime';
import type { VaultClient } from '@vaultkeeper/vault';
import { readLock } from './lock.ts';

export interface S3Settings {
  bucket: string;
  prefix: string;
  endpoint?: string | undefined;
  region: string;
  forcePathStyle: boolean;
  sse?: 'aws:kms' | 'AES256' | 'none' | undefined;
  kmsKeyId?: string | undefined;
  partSizeMiB: number;
  concurrency: number;
  credentialsFromVault?: string | undefined;
  requestTimeoutSeconds: number;
}

const kvCredentials = z.object({
  data: z.object({ access_key_id: z.string().min(1), secret_access_key: z.string().min(1), session_token: z.string().min(1).optional() }),
});

export async function createS3Client(s3: S3Settings, vault: VaultClient | undefined, log: Logger): Promise<S3Client> {
  let credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  if (s3.credentialsFromVault) {
    if (!vault) throw new Error('s3.credentialsFromVault needs a Vault connection');
    const kv = await vault.read(s3.credentialsFromVault, kvCredentials);
    registerSecret(kv.data.secret_access_key);
    registerSecret(kv.data.session_token);
    credentials = {
      accessKeyId: kv.data.access_key_id,
      secretAccessKey: kv.data.secret_access_key,
      ...(kv.data.session_token ? { sessionToken: kv.data.session_token } : {}),
    };
    log.info({ path: s3.credentialsFromVault }, 'S3 credentials read from Vault');
  }
  return createAwsS3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: s3.forcePathStyle,
    credentials,
    // The SDK retries each request (throttling, 5xx, connection errors) with its own backoff.
    maxAttempts: 3,
    connectTimeoutSeconds: 5,
    // An idle limit, not a total one: a 5 GiB part may rightly take minutes.
    idleTimeoutSeconds: s3.requestTimeoutSeconds,
  });
}

/** The SSE headers for a PutObject/CreateMultipartUpload/CopyObject. */
export function encryptionParams(s3: S3Settings): { ServerSideEncryption?: ServerSideEncryption; SSEKMSKeyId?: string } {
  const mode = s3.sse ?? (s3.kmsKeyId ? 'aws:kms' : 'AES256');
  if (mode === 'none') return {};
  if (mode === 'aws:kms') return { ServerSideEncryption: 'aws:kms', ...(s3.kmsKeyId ? { SSEKMSKeyId: s3.kmsKeyId } : {}) };
  return { ServerSideEncryption: 'AES256' };
}

export interface StoredObject {
  key: string;
  /** The cluster id of its folder; undefined for a format-2 object (from before cluster ids). */
  clusterId: string | undefined;
  takenAt: Date;
  size: number;
  lastModified: Date | undefined;
  /** Present when the object carries this job's mark and a complete description. */
  meta: SnapshotMetadata | undefined;
  /** Whether its record object exists: without one the snapshot was never committed. */
  recorded: boolean;
  encryption: string | undefined;
}

/** A snapshot this job committed: its own, with its record beside it. */
export function isCommitted(o: StoredObject): boolean {
  return Boolean(o.meta) && o.recorded;
}

export interface ClusterScan {
  /** The snapshot-named objects in scope, oldest first, with their metadata. */
  snapshots: StoredObject[];
  /** Record objects in scope whose snapshot is gone (a prune or discard that stopped half-way). */
  strayRecords: string[];
  /** Every cluster id with a folder under this name (other clusters of the same name included). */
  clusterIds: string[];
  /**
   * Whose the format-2 objects are (@vaultkeeper/records clusterScope): with a clusterId, whether
   * they are adopted (in `snapshots`) and may be removed; without (every cluster), undefined.
   */
  legacy: ClusterScope | undefined;
  /** Listed, then gone before their HEAD (a lifecycle rule or a person deleted them): skipped. */
  vanished: string[];
}

/**
 * The objects of one cluster name: with `clusterId`, that cluster's folder plus the format-2
 * objects from before cluster ids when @vaultkeeper/records clusterScope adopts them (nothing
 * proves that another cluster of the name writes them); without, every cluster of that name
 * (`list`, `verify`).
 */
export async function scanCluster(
  client: S3Client,
  s3: S3Settings,
  cluster: string,
  clusterId: string | undefined,
  signal?: AbortSignal,
): Promise<ClusterScan> {
  const opts = signal ? [{ abortSignal: signal }] : [];
  const folder = clusterFolder(s3.prefix, cluster);
  // Delimiter '/': the folder's own objects (format 2) and its sub-folders (one per cluster id).
  const listing = (prefix: string) =>
    listFolder((p, token) => client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: p, Delimiter: '/', ContinuationToken: token, MaxKeys: 1000 }), ...opts), prefix);
  const top = await listing(folder);
  const clusterIds = clusterIdsIn(top.folders, s3.prefix, cluster);
  let scope: Array<{ key: string; size: number; lastModified: Date | undefined }>;
  let legacy: ClusterScope | undefined;
  if (clusterId === undefined) {
    scope = [...top.objects];
    for (const id of clusterIds) scope.push(...(await listing(`${folder}${id}/`)).objects);
  } else {
    const own = (await listing(`${folder}${clusterId}/`)).objects;
    const lockKey = legacyLockKey(s3.prefix, cluster);
    let legacyLock: 'none' | 'expired' | 'live' = 'none';
    if (top.objects.some((o) => o.key === lockKey)) {
      // A format-2 run's lock: live until its own recorded expiry (unreadable counts as live here:
      // leaving objects alone one run too many costs nothing).
      const held = await readLock(client, s3.bucket, lockKey).catch(() => ({ expiresAt: new Date(8.64e15).toISOString() }));
      legacyLock = !held ? 'none' : new Date(held.expiresAt).getTime() < Date.now() ? 'expired' : 'live';
    }
    legacy = clusterScope({ prefix: s3.prefix, cluster, clusterId, top, own, legacyLock });
    scope = [...(legacy.adopt ? top.objects : []), ...own];
  }

  const found: Array<{ key: string; clusterId: string | undefined; takenAt: Date; size: number; lastModified: Date | undefined }> = [];
  const records = new Set<string>();
  for (const o of scope) {
    if (o.key.endsWith(RECORD_SUFFIX)) {
      records.add(o.key);
      continue;
    }
    const parsed = parseSnapshotKey(o.key, s3.prefix, cluster);
    if (parsed) found.push({ ...o, clusterId: parsed.clusterId, takenAt: parsed.takenAt });
  }
  found.sort((a, b) => a.takenAt.getTime() - b.takenAt.getTime() || (a.key < b.key ? -1 : 1));
  // ListObjectsV2 carries no user metadata: one HEAD per object, a few at a time.
  const heads: Array<StoredObject | undefined> = new Array(found.length);
  const vanished: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < found.length; i = next++) {
      const f = found[i]!;
      try {
        const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: f.key }), ...opts);
        heads[i] = { ...f, meta: readMetadata(head.Metadata, cluster, f.clusterId), recorded: records.has(recordKey(f.key)), encryption: head.ServerSideEncryption };
      } catch (err) {
        if (!isNotFound(err)) throw err;
        vanished.push(f.key);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, found.length) }, worker));
  const snapshots = heads.filter((h): h is StoredObject => h !== undefined);
  const snapshotKeys = new Set(found.map((f) => f.key));
  const strayRecords = [...records].filter((r) => parseSnapshotKey(r.slice(0, -RECORD_SUFFIX.length), s3.prefix, cluster) && !snapshotKeys.has(r.slice(0, -RECORD_SUFFIX.length)));
  return { snapshots, strayRecords, clusterIds, legacy, vanished };
}

function isNotFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404);
}

/** The record beside a snapshot, or undefined when there is none; throws when it is not one of ours. */
export async function readRecord(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<SnapshotRecord | undefined> {
  let text: string;
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: recordKey(key) }), signal ? { abortSignal: signal } : {});
    text = await res.Body!.transformToString();
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${recordKey(key)} is not JSON`);
  }
  const parsed = snapshotRecord.safeParse(json);
  if (!parsed.success || parsed.data.key !== key) throw new Error(`${recordKey(key)} is not a record of this job for ${key}`);
  return parsed.data;
}

export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated: Date | undefined;
}

/** Multipart uploads under a prefix, all pages. */
export async function listUploads(client: S3Client, bucket: string, prefix: string, signal?: AbortSignal): Promise<PendingUpload[]> {
  const out: PendingUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await client.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      signal ? { abortSignal: signal } : {},
    );
    for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated });
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
    if (!keyMarker && !uploadIdMarker) return out;
  }
}

export async function abortUpload(client: S3Client, bucket: string, u: PendingUpload, signal?: AbortSignal): Promise<void> {
  try {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }), signal ? { abortSignal: signal } : {});
  } catch (err) {
    if (!(err instanceof S3ServiceException && err.name === 'NoSuchUpload')) throw err;
  }
}

export interface DeleteOutcome {
  deleted: string[];
  /** Keys S3 did not delete, with its reason (a per-key error of DeleteObjects, or the request's own failure). */
  failed: Array<{ key: string; reason: string }>;
}

/**
 * Deletes keys 1,000 per request (the DeleteObjects limit). DeleteObjects answers 200 with a
 * per-key error for each key it did not delete, so the answer is read key by key; a batch whose
 * request failed as a whole counts all its keys as not deleted. Never throws for S3's refusals.
 */
export async function deleteObjects(client: S3Client, bucket: string, keys: string[], signal?: AbortSignal): Promise<DeleteOutcome> {
  const out: DeleteOutcome = { deleted: [], failed: [] };
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    let errors: Map<string, string>;
    try {
      const res = await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
        signal ? { abortSignal: signal } : {},
      );
      errors = new Map((res.Errors ?? []).map((e) => [e.Key ?? '', `${e.Code ?? 'error'}${e.Message ? `: ${e.Message}` : ''}`]));
    } catch (err) {
      if (signal?.aborted) throw err;
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      errors = new Map(batch.map((k) => [k, reason]));
    }
    for (const key of batch) {
      const reason = errors.get(key);
      if (reason === undefined) out.deleted.push(key);
      else out.failed.push({ key, reason });
    }
  }
  return out;
}

export async function deleteObject(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), signal ? { abortSignal: signal } : {});
}

/** True for errors that come from S3 or the way to it (as opposed to Vault or the snapshot). */
export function isS3Error(err: unknown): boolean {
  return err instanceof S3ServiceException || (err instanceof Error && '$metadata' in err);
}
