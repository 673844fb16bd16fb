import { z } from 'zod';
import { isClusterId, isUsableClusterName } from './snapshot-layout.ts';

// The two config fields by which raft-snapshot (writer) and kms-probe (reader) name the same
// snapshot folder: declared once, so the two jobs accept exactly the same values.

/** `snapshot.cluster`: names the folder; sanitised as sanitizeCluster does. */
export const snapshotClusterName = z
  .string({ error: 'must be a cluster name' })
  .min(1, 'must be a cluster name')
  .refine(isUsableClusterName, 'has no usable characters (use letters, digits, ".", "_" or "-")');

/** `snapshot.clusterId`: a cluster_id as sys/health reports it. */
export const snapshotClusterId = z
  .string({ error: 'must be a cluster_id' })
  .min(1, 'must be a cluster_id')
  .refine(isClusterId, 'is not a cluster_id as sys/health reports it (a UUID)');
