// The probe's own settings, in one place: every field, its default, and the variable that sets it.
// Nothing else in the job reads process.env (AWS credentials are the SDK's own provider chain:
// IRSA / pod identity in a cluster, AWS_ACCESS_KEY_ID & co. only for local runs).
import { DEFAULT_SNAPSHOT_PREFIX, snapshotClusterId, snapshotClusterName } from '@vaultkeeper/records';
import { defineConfig, field, mergeSpecs, z } from '@vaultkeeper/runtime';
import { vaultConfig } from '@vaultkeeper/vault';
import { CHECK_NAMES } from './check.ts';

const DAY = 86_400;

export const probeConfig = defineConfig({
  shape: {
    /** Shared by the KMS and S3 clients unless their own section overrides it. */
    aws: z
      .strictObject({
        region: field.nonEmpty().optional(),
        endpoint: field.url('an absolute http(s) URL of an AWS-compatible endpoint').optional(),
      })
      .default({}),
    kms: z
      .strictObject({
        /**
         * The key Vault's awskms seal names in `kms_key_id`: key ID, key ARN, alias name or alias ARN.
         * The default is the alias the project's chart and local stack give the unseal key.
         */
        keyId: field.nonEmpty().default('alias/vaultkeeper-unseal'),
        /** When set, the key the alias resolves to must be exactly this ARN (catches a re-pointed alias). */
        expectedKeyArn: field.nonEmpty().optional(),
        /** Region of the KMS API (default aws.region); also the region the key's ARN must be in. */
        region: field.nonEmpty().optional(),
        /** A VPC or non-AWS endpoint for KMS (default aws.endpoint). */
        endpoint: field.url('an absolute http(s) URL such as https://kms.eu-west-1.amazonaws.com').optional(),
        /** Bounds each KMS call (connect, wait for the answer, read it). */
        callTimeoutSeconds: field.seconds(0.1).default(5),
        /** Attempts per KMS call including the first; the SDK backs off between them. 1 = no retry. */
        maxAttempts: field.int(1, 5).default(2),
      })
      .default({ keyId: 'alias/vaultkeeper-unseal', callTimeoutSeconds: 5, maxAttempts: 2 }),
    nodes: z
      .strictObject({
        /**
         * API addresses of every node. Empty: discovered from the cluster (sys/ha-status, which
         * lists each node's api_address, checked against the Raft configuration); when discovery is
         * not possible, vault.address plus vault.fallbackAddresses.
         */
        addresses: field.list(field.url()).default([]),
        /** The seal type every node must report in sys/seal-status. */
        expectedSealType: field.nonEmpty().default('awskms'),
        /** Bounds each call to one node, retries included. */
        callTimeoutSeconds: field.seconds(0.1).default(5),
      })
      .default({ addresses: [], expectedSealType: 'awskms', callTimeoutSeconds: 5 }),
    raft: z
      .strictObject({
        /** Voters the cluster should have; fewer is a failure naming the missing ones. 0 = do not check. */
        expectedVoters: field.int(0, 100).default(3),
        /** Lowest acceptable autopilot failure tolerance (3 voters tolerate 1 failure). */
        minFailureTolerance: field.int(0, 50).default(1),
      })
      .default({ expectedVoters: 3, minFailureTolerance: 1 }),
    snapshot: z
      .strictObject({
        /** Bucket the raft-snapshot job writes to; unset = the snapshot-age check is skipped. */
        bucket: field.nonEmpty().optional(),
        /** The raft-snapshot job's s3.prefix: its objects are under <prefix><cluster>/<cluster_id>/. */
        prefix: z.string().default(DEFAULT_SNAPSHOT_PREFIX),
        /** The raft-snapshot job's snapshot.cluster, if it sets one; default: cluster_name from sys/health, as that job does. */
        cluster: snapshotClusterName.optional(),
        /** This cluster's cluster_id (sys/health): with snapshot.cluster, the check still judges the backup's age when Vault does not answer. A Vault that answers with another id fails the check. */
        clusterId: snapshotClusterId.optional(),
        /** The newest verified snapshot must be younger than this. */
        maxAgeSeconds: field.seconds(1).default(26 * 3600),
        region: field.nonEmpty().optional(),
        endpoint: field.url('an absolute http(s) URL of an S3-compatible endpoint').optional(),
        forcePathStyle: field.bool().default(false),
      })
      .default({ prefix: DEFAULT_SNAPSHOT_PREFIX, maxAgeSeconds: 26 * 3600, forcePathStyle: false }),
    emergencyToken: z
      .strictObject({
        /** Off unless the emergency-token job runs in this cluster. */
        enabled: field.bool().default(false),
        /** KV v2 API path of the record the emergency-token job keeps (field `expiresAt`, ISO 8601). */
        statePath: field.nonEmpty().default('secret/data/vaultkeeper/emergency-token/state'),
        /** The break-glass token must stay valid at least this long. */
        minRemainingSeconds: field.seconds(0).default(7 * DAY),
      })
      .default({ enabled: false, statePath: 'secret/data/vaultkeeper/emergency-token/state', minRemainingSeconds: 7 * DAY }),
    /** Checks whose failure fails the run (exit 1); a failing check not listed is a warning. */
    criticalChecks: field.list(z.enum(CHECK_NAMES)).default(['kms-key', 'kms-roundtrip', 'vault-nodes', 'raft']),
    /** Whole run, all checks together; a check still waiting then is reported as timed out. */
    deadlineSeconds: field.seconds(1).default(45),
    /** Print the table for a person on stdout (the JSON log lines and summary are printed either way). */
    table: field.bool().default(true),
  },
  env: {
    // Same variables as Vault's awskms seal reads (AWSKMS_WRAPPER_KEY_ID, VAULT_AWSKMS_SEAL_KEY_ID,
    // AWS_KMS_ENDPOINT), so one ConfigMap can feed both; later entries win.
    VAULT_AWSKMS_SEAL_KEY_ID: { path: 'kms.keyId', doc: 'KMS key of the awskms seal: key id, ARN or alias (default alias/vaultkeeper-unseal)' },
    AWSKMS_WRAPPER_KEY_ID: { path: 'kms.keyId', doc: 'same as VAULT_AWSKMS_SEAL_KEY_ID (the newer name)' },
    KMS_PROBE_EXPECTED_KEY_ARN: { path: 'kms.expectedKeyArn', doc: 'the ARN the key must resolve to (optional)' },
    AWS_REGION: { path: 'aws.region', doc: 'AWS region of the KMS key and the snapshot bucket (else the SDK default chain)' },
    AWS_ENDPOINT_URL: { path: 'aws.endpoint', doc: 'custom endpoint for KMS and S3 (local stack / VPC endpoint)' },
    KMS_PROBE_KMS_REGION: { path: 'kms.region', doc: 'region of the KMS key when it differs from AWS_REGION' },
    AWS_ENDPOINT_URL_KMS: { path: 'kms.endpoint', doc: 'custom KMS endpoint, overrides AWS_ENDPOINT_URL' },
    AWS_KMS_ENDPOINT: { path: 'kms.endpoint', doc: 'same as AWS_ENDPOINT_URL_KMS (the name Vault’s awskms seal reads)' },
    KMS_PROBE_KMS_TIMEOUT: { path: 'kms.callTimeoutSeconds', doc: 'bound of each KMS call (default 5s)' },
    KMS_PROBE_KMS_MAX_ATTEMPTS: { path: 'kms.maxAttempts', doc: 'attempts per KMS call, 1-5 (default 2)' },
    KMS_PROBE_NODES: { path: 'nodes.addresses', doc: 'comma-separated API address of every Vault node (default: discovered)' },
    KMS_PROBE_SEAL_TYPE: { path: 'nodes.expectedSealType', doc: 'seal type every node must report (default awskms)' },
    KMS_PROBE_NODE_TIMEOUT: { path: 'nodes.callTimeoutSeconds', doc: 'bound of each call to one node (default 5s)' },
    KMS_PROBE_EXPECTED_VOTERS: { path: 'raft.expectedVoters', doc: 'Raft voters expected, 0 = any (default 3)' },
    KMS_PROBE_MIN_FAILURE_TOLERANCE: { path: 'raft.minFailureTolerance', doc: 'lowest acceptable failure tolerance (default 1)' },
    KMS_PROBE_SNAPSHOT_BUCKET: { path: 'snapshot.bucket', doc: 'S3 bucket of the Raft snapshots (unset: check skipped)' },
    KMS_PROBE_SNAPSHOT_PREFIX: { path: 'snapshot.prefix', doc: `the raft-snapshot job’s s3.prefix (default ${DEFAULT_SNAPSHOT_PREFIX})` },
    KMS_PROBE_SNAPSHOT_CLUSTER: { path: 'snapshot.cluster', doc: 'the raft-snapshot job’s snapshot.cluster, if set (default: cluster_name from sys/health)' },
    KMS_PROBE_SNAPSHOT_CLUSTER_ID: { path: 'snapshot.clusterId', doc: 'this cluster’s cluster_id: with KMS_PROBE_SNAPSHOT_CLUSTER, the snapshot age is judged even when Vault does not answer' },
    KMS_PROBE_SNAPSHOT_MAX_AGE: { path: 'snapshot.maxAgeSeconds', doc: 'oldest acceptable newest snapshot (default 26h)' },
    AWS_ENDPOINT_URL_S3: { path: 'snapshot.endpoint', doc: 'custom S3 endpoint, overrides AWS_ENDPOINT_URL' },
    KMS_PROBE_SNAPSHOT_REGION: { path: 'snapshot.region', doc: 'region of the snapshot bucket when it differs from AWS_REGION' },
    KMS_PROBE_S3_PATH_STYLE: { path: 'snapshot.forcePathStyle', doc: 'path-style S3 addressing (MinIO, Ceph) (default false)' },
    KMS_PROBE_EMERGENCY_TOKEN: { path: 'emergencyToken.enabled', doc: 'check the break-glass token expiry (default false)' },
    KMS_PROBE_EMERGENCY_TOKEN_PATH: { path: 'emergencyToken.statePath', doc: 'KV v2 path of its record (default secret/data/vaultkeeper/emergency-token/state)' },
    KMS_PROBE_TOKEN_MIN_REMAINING: { path: 'emergencyToken.minRemainingSeconds', doc: 'shortest acceptable remaining validity (default 7d)' },
    KMS_PROBE_CRITICAL: { path: 'criticalChecks', doc: `comma-separated checks that fail the run (default kms-key,kms-roundtrip,vault-nodes,raft; all: ${CHECK_NAMES.join(',')})` },
    KMS_PROBE_DEADLINE: { path: 'deadlineSeconds', doc: 'deadline of the whole run (default 45s)' },
    KMS_PROBE_TABLE: { path: 'table', doc: 'print the table for a person (default true)' },
  },
});

export const jobConfig = mergeSpecs(vaultConfig, probeConfig);
