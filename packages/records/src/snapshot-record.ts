/**
 * What the raft-snapshot job says about each snapshot: the object's own metadata (fixed when its
 * upload starts) and the record object beside it (written once it was verified and stored).
 */
import { z } from 'zod';

/** Marks an object as written by the raft-snapshot job; retention never touches an object without it. */
export const JOB_MARK = 'raft-snapshot';
/** 3: objects in the cluster_id's own folder, which metadata and record name too. */
export const FORMAT_VERSION = '3';
/** 2: the whole-object SHA-256 in the record object; no cluster_id. Still read, listed, verified and pruned. */
export const LEGACY_FORMAT_VERSION = '2';

/** The snapshot object's user metadata (x-amz-meta-*, lower-case names). */
export interface SnapshotMetadata {
  'vaultkeeper-job': string;
  'vaultkeeper-format': string;
  cluster: string;
  /** Format 3 only. */
  'cluster-id'?: string;
  'raft-index': string;
  'raft-term': string;
  'vault-version': string;
  'vault-node': string;
  'taken-at': string;
  'run-id': string;
}

/**
 * The job's description on an object of `cluster` (and, for a format-3 object, of `clusterId`),
 * or undefined when it is not (entirely) the job's.
 */
export function readMetadata(meta: Record<string, string> | undefined, cluster: string, clusterId: string | undefined): SnapshotMetadata | undefined {
  if (!meta || meta['vaultkeeper-job'] !== JOB_MARK || meta.cluster !== cluster) return undefined;
  const format = meta['vaultkeeper-format'];
  if (format === FORMAT_VERSION) {
    if (!clusterId || meta['cluster-id'] !== clusterId) return undefined;
  } else if (format !== LEGACY_FORMAT_VERSION || clusterId !== undefined) {
    return undefined;
  }
  const required: Array<keyof SnapshotMetadata> = ['raft-index', 'raft-term', 'taken-at', 'run-id'];
  if (required.some((k) => !meta[k])) return undefined;
  return meta as unknown as SnapshotMetadata;
}

export const VERIFIED_CHECKS = ['gzip', 'tar', 'sha256sums', 'members', 'sealed-manifest'];

const recordFields = {
  job: z.literal(JOB_MARK),
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
};

/** The record object (<snapshot>.json): format 3 names the cluster_id, format 2 did not. */
export const snapshotRecord = z.discriminatedUnion('format', [
  z.object({ ...recordFields, format: z.literal(3), clusterId: z.string().min(1) }),
  z.object({ ...recordFields, format: z.literal(2) }),
]);
export type SnapshotRecord = z.infer<typeof snapshotRecord>;
