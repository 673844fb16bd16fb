# vaultkeeper-raft-snapshot: streams a Raft snapshot of the cluster to S3 (jobs/raft-snapshot).
# Attached to the Kubernetes auth role vaultkeeper-raft-snapshot (kubernetes-role.json).
# Least privilege: read the snapshot, nothing else of the cluster. It cannot restore
# (sys/storage/raft/snapshot-force needs update on that path, deliberately not granted).

# GET sys/storage/raft/snapshot, asked of the active node (a Vault standby answers 307 to it, an
# OpenBao standby serves its own copy); the token is valid on every node.
path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}

# Which node is active (sys/leader answers without a token too; listed so that the intent is
# visible and a future Vault that requires one does not break the job).
path "sys/leader" {
  capabilities = ["read"]
}

# The login token lives 15 minutes; a retry after a long failed attempt renews it first.
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Every job revokes its own login token when it finishes.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Only for S3-compatible stores with static keys (s3.credentialsFromVault): uncomment with the
# KV v2 path you configured.
# path "secret/data/vaultkeeper/raft-snapshot/s3" {
#   capabilities = ["read"]
# }
