import { DEFAULT_SNAPSHOT_PREFIX, snapshotClusterId, snapshotClusterName } from '@vaultkeeper/records';
import { defineConfig, field, mergeSpecs, z } from '@vaultkeeper/runtime';
import { vaultConfig } from '@vaultkeeper/vault';

/**
 * The raft-snapshot job's own settings. Every key can come from the config file (dotted path) or
 * from the environment variable named beside it; environment wins. S3 credentials are never
 * config: they come from the AWS SDK's default chain (IRSA / EKS Pod Identity web-identity token,
 * instance profile, or AWS_* variables on a developer machine) or, for stores that only have static
 * keys (MinIO, Ceph, Spaces), from a Vault KV secret named by s3.credentialsFromVault.
 */
export const snapshotConfig = defineConfig({
  shape: {
    snapshot: z
      .strictObject({
        /** Names the objects (lower-cased, at most 63 characters in keys); defaults to the cluster_name Vault reports in sys/health. */
        cluster: snapshotClusterName.optional(),
        /** The cluster_id (sys/health) whose objects list and verify show when several clusters share one name; a snapshot run refuses a Vault of another id. */
        clusterId: snapshotClusterId.optional(),
        /** Whole run, all attempts included; keep it below the pod's activeDeadlineSeconds minus shutdownGraceSeconds so that the job, not the kubelet, ends a run that is too slow (and cleans up). There is deliberately no per-download deadline: a large snapshot may take long; a stalled one is caught by vault.requestTimeoutSeconds (idle). */
        deadlineSeconds: field.seconds(60).default(3000),
        /** Attempts at taking and uploading a snapshot (each from the start, on the active node of that moment). */
        maxAttempts: field.int(1, 20).default(3),
      })
      .default({ deadlineSeconds: 3000, maxAttempts: 3 }),
    s3: z.strictObject({
      bucket: field.nonEmpty('an S3 bucket name'),
      /** Key prefix; objects go under <prefix><cluster>/<cluster_id>/ (format-2 objects of earlier versions directly under <prefix><cluster>/). */
      prefix: z.string().default(DEFAULT_SNAPSHOT_PREFIX),
      /** For S3-compatible stores (MinIO, Ceph RGW, Spaces); AWS needs none. */
      endpoint: field.url('an http(s) URL of the S3 endpoint').optional(),
      region: field.nonEmpty('an AWS region such as eu-west-1').default('us-east-1'),
      /** Path-style addressing (https://host/bucket/key), which most S3-compatible stores need. */
      forcePathStyle: field.bool().default(false),
      /** aws:kms (SSE-KMS with kmsKeyId), AES256 (SSE-S3) or none (stores without SSE). Default: aws:kms when kmsKeyId is set, else AES256. */
      sse: z.enum(['aws:kms', 'AES256', 'none']).optional(),
      kmsKeyId: field.nonEmpty('a KMS key id, ARN or alias/name').optional(),
      /** Multipart part size; buffered memory is about partSizeMiB x (concurrency + 2). S3 allows 10,000 parts, so 8 MiB parts allow a 78 GiB snapshot. */
      partSizeMiB: field.int(5, 5120).default(8),
      /** Parts in flight at once. 2 keeps peak RSS under 150 MiB (see docs); raise it for throughput to a distant S3 region. */
      concurrency: field.int(1, 16).default(2),
      /** KV v2 path (e.g. secret/data/vaultkeeper/raft-snapshot/s3) holding access_key_id and secret_access_key. */
      credentialsFromVault: field.nonEmpty('a Vault KV v2 path').optional(),
      /** Idle limit of one S3 request; also bounds how long cleanup tries to abort an upload. */
      requestTimeoutSeconds: field.seconds(1).default(30),
    }),
    retention: z
      .strictObject({
        enabled: field.bool().default(true),
        keepLast: field.int(0, 10_000).default(7),
        daily: field.int(0, 10_000).default(7),
        weekly: field.int(0, 10_000).default(4),
        monthly: field.int(0, 10_000).default(6),
      })
      .default({ enabled: true, keepLast: 7, daily: 7, weekly: 4, monthly: 6 }),
    lock: z
      .strictObject({
        /** How long a run waits for another run's lock before it gives up (exit 1). */
        waitSeconds: field.seconds(0).default(0),
      })
      .default({ waitSeconds: 0 }),
  },
  env: {
    SNAPSHOT_CLUSTER: { path: 'snapshot.cluster', doc: 'cluster name in object keys (default: cluster_name from sys/health)' },
    SNAPSHOT_CLUSTER_ID: { path: 'snapshot.clusterId', doc: 'cluster_id of this cluster (optional; list/verify show only its objects when several clusters share a name)' },
    SNAPSHOT_DEADLINE: { path: 'snapshot.deadlineSeconds', doc: 'deadline of the whole run incl. retries (default 50m; keep it under the pod activeDeadlineSeconds)' },
    SNAPSHOT_MAX_ATTEMPTS: { path: 'snapshot.maxAttempts', doc: 'attempts at snapshot+upload, each from the start (default 3)' },
    SNAPSHOT_S3_BUCKET: { path: 's3.bucket', doc: 'bucket to store snapshots in (required)' },
    SNAPSHOT_S3_PREFIX: { path: 's3.prefix', doc: `key prefix (default ${DEFAULT_SNAPSHOT_PREFIX})` },
    AWS_ENDPOINT_URL: { path: 's3.endpoint', doc: 'S3 endpoint for S3-compatible stores (default: AWS)' },
    AWS_ENDPOINT_URL_S3: { path: 's3.endpoint', doc: 'same, S3 only; wins over AWS_ENDPOINT_URL' },
    AWS_REGION: { path: 's3.region', doc: 'region of the bucket (default us-east-1)' },
    SNAPSHOT_S3_FORCE_PATH_STYLE: { path: 's3.forcePathStyle', doc: 'path-style addressing, for MinIO/Ceph (default false)' },
    SNAPSHOT_S3_SSE: { path: 's3.sse', doc: 'aws:kms, AES256 or none (default aws:kms with a key, else AES256)' },
    SNAPSHOT_S3_KMS_KEY_ID: { path: 's3.kmsKeyId', doc: 'KMS key for SSE-KMS, e.g. alias/vault-backups' },
    SNAPSHOT_S3_PART_SIZE_MIB: { path: 's3.partSizeMiB', doc: 'multipart part size in MiB (default 8)' },
    SNAPSHOT_S3_CONCURRENCY: { path: 's3.concurrency', doc: 'parts uploaded at once (default 2)' },
    SNAPSHOT_S3_CREDENTIALS_FROM_VAULT: { path: 's3.credentialsFromVault', doc: 'KV v2 path with access_key_id/secret_access_key (optional)' },
    SNAPSHOT_S3_REQUEST_TIMEOUT: { path: 's3.requestTimeoutSeconds', doc: 'idle timeout of one S3 request (default 30s)' },
    SNAPSHOT_RETENTION_ENABLED: { path: 'retention.enabled', doc: 'prune old snapshots after a successful run (default true)' },
    SNAPSHOT_KEEP_LAST: { path: 'retention.keepLast', doc: 'keep the newest N snapshots (default 7)' },
    SNAPSHOT_KEEP_DAILY: { path: 'retention.daily', doc: 'keep the newest snapshot of each of the last N days (default 7)' },
    SNAPSHOT_KEEP_WEEKLY: { path: 'retention.weekly', doc: 'keep the newest snapshot of each of the last N ISO weeks (default 4)' },
    SNAPSHOT_KEEP_MONTHLY: { path: 'retention.monthly', doc: 'keep the newest snapshot of each of the last N months (default 6)' },
    SNAPSHOT_LOCK_WAIT: { path: 'lock.waitSeconds', doc: 'wait this long for a running snapshot to finish (default 0: fail at once)' },
  },
});

export const jobConfig = mergeSpecs(vaultConfig, snapshotConfig);

