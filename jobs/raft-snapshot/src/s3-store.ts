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
  paginateListObjectsV2,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { createS3Client as createAwsS3Client } from '@vaultkeeper/aws';
import { registerSecret, z, type Logger } from '@vaultkeeper/runtime';
import type { VaultClient } from '@vaultkeeper/vault';
import { clusterPrefix, parseSnapshotKey, RECORD_SUFFIX, recordKey } from './object-name.ts';

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

/** Marks an object as written by this job; retention never touches an object without it. */
export const JOB_MARK = 'raft-snapshot';
/** 2: the whole-object SHA-256 lives in the record object beside the snapshot. */
export const FORMAT_VERSION = '2';

/** x-amz-meta-* of a snapshot, fixed when its upload starts (S3 lower-cases metadata names). */
export interface SnapshotMetadata {
  'vaultkeeper-job': string;
  'vaultkeeper-format': string;
  cluster: string;
  'raft-index': string;
  'raft-term': string;
  'vault-version': string;
  'vault-node': string;
  'taken-at': string;
  'run-id': string;
}

export const VERIFIED_CHECKS = ['gzip', 'tar', 'sha256sums', 'members', 'sealed-manifest'];

/** The record object (<snapshot>.json), written once the snapshot was verified and stored. */
export const snapshotRecord = z.object({
  job: z.literal(JOB_MARK),
  format: z.literal(Number(FORMAT_VERSION)),
  key: z.string(),
  cluster: z.string(),
  takenAt: z.string(),
  runId: z.string(),
  /** SHA-256 of the whole object as stored, hex. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  raftIndex: z.string().regex(/^\d+$/),
  raftTerm: z.string().regex(/^\d+$/),
  vaultVersion: z.string(),
  vaultNode: z.string(),
  /** What was checked before the snapshot was committed. */
  verified: z.array(z.string()),
  members: z.array(z.object({ name: z.string(), size: z.number().int().nonnegative(), sha256: z.string() })),
});
export type SnapshotRecord = z.infer<typeof snapshotRecord>;

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
  /** Every snapshot-named object under the cluster's prefix, oldest first, with its metadata. */
  snapshots: StoredObject[];
  /** Record objects whose snapshot is gone (a prune or discard that stopped half-way). */
  strayRecords: string[];
}

export async function listSnapshots(client: S3Client, s3: S3Settings, cluster: string, signal?: AbortSignal): Promise<StoredObject[]> {
  return (await scanCluster(client, s3, cluster, signal)).snapshots;
}

export async function scanCluster(client: S3Client, s3: S3Settings, cluster: string, signal?: AbortSignal): Promise<ClusterScan> {
  const prefix = clusterPrefix(s3.prefix, cluster);
  const found: Array<{ key: string; takenAt: Date; size: number; lastModified: Date | undefined }> = [];
  const records = new Set<string>();
  // Delimiter '/' keeps anything in sub-folders out of the listing.
  for await (const page of paginateListObjectsV2({ client, pageSize: 1000 }, { Bucket: s3.bucket, Prefix: prefix, Delimiter: '/' }, ...(signal ? [{ abortSignal: signal }] : []))) {
    for (const o of page.Contents ?? []) {
      if (!o.Key) continue;
      if (o.Key.endsWith(RECORD_SUFFIX)) {
        records.add(o.Key);
        continue;
      }
      const parsed = parseSnapshotKey(o.Key, s3.prefix, cluster);
      if (parsed) found.push({ key: o.Key, takenAt: parsed.takenAt, size: o.Size ?? 0, lastModified: o.LastModified });
    }
  }
  found.sort((a, b) => a.takenAt.getTime() - b.takenAt.getTime() || (a.key < b.key ? -1 : 1));
  // ListObjectsV2 carries no user metadata: one HEAD per object, a few at a time.
  const out: StoredObject[] = new Array(found.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < found.length; i = next++) {
      const f = found[i]!;
      const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: f.key }), signal ? { abortSignal: signal } : {});
      out[i] = { ...f, meta: readMetadata(head.Metadata, cluster), recorded: records.has(recordKey(f.key)), encryption: head.ServerSideEncryption };
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, found.length) }, worker));
  const snapshotKeys = new Set(found.map((f) => f.key));
  const strayRecords = [...records].filter((r) => parseSnapshotKey(r.slice(0, -RECORD_SUFFIX.length), s3.prefix, cluster) && !snapshotKeys.has(r.slice(0, -RECORD_SUFFIX.length)));
  return { snapshots: out, strayRecords };
}

/** The job's description on an object, or undefined when it is not (entirely) ours. */
export function readMetadata(meta: Record<string, string> | undefined, cluster: string): SnapshotMetadata | undefined {
  if (!meta || meta['vaultkeeper-job'] !== JOB_MARK || meta.cluster !== cluster || meta['vaultkeeper-format'] !== FORMAT_VERSION) return undefined;
  const required: Array<keyof SnapshotMetadata> = ['raft-index', 'raft-term', 'taken-at', 'run-id'];
  if (required.some((k) => !meta[k])) return undefined;
  return meta as unknown as SnapshotMetadata;
}

/** The record beside a snapshot, or undefined when there is none; throws when it is not one of ours. */
export async function readRecord(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<SnapshotRecord | undefined> {
  let text: string;
  try {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: recordKey(key) }), signal ? { abortSignal: signal } : {});
    text = await res.Body!.transformToString();
  } catch (err) {
    if (err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404)) return undefined;
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

/** Deletes keys 1,000 per request (the DeleteObjects limit); returns the keys deleted, throws if any failed. */
export async function deleteObjects(client: S3Client, bucket: string, keys: string[], signal?: AbortSignal): Promise<string[]> {
  const deleted: string[] = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const res = await client.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
      signal ? { abortSignal: signal } : {},
    );
    const failed = new Set((res.Errors ?? []).map((e) => e.Key));
    for (const key of batch) {
      if (failed.has(key)) continue;
      deleted.push(key);
    }
    if (failed.size) {
      const first = res.Errors![0]!;
      throw new Error(`S3 refused to delete ${failed.size} object(s), e.g. ${first.Key}: ${first.Code ?? ''} ${first.Message ?? ''}`.trim());
    }
  }
  return deleted;
}

export async function deleteObject(client: S3Client, bucket: string, key: string, signal?: AbortSignal): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), signal ? { abortSignal: signal } : {});
}

/** True for errors that come from S3 or the way to it (as opposed to Vault or the snapshot). */
export function isS3Error(err: unknown): boolean {
  return err instanceof S3ServiceException || (err instanceof Error && '$metadata' in err);
}
