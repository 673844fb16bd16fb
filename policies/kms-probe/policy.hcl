# vaultkeeper-kms-probe: checks that every node is unsealed through the KMS seal, that the
# Raft cluster is healthy, and that the break-glass token recorded by emergency-token is fresh.

path "sys/seal-status" {
  capabilities = ["read"]
}

path "sys/health" {
  capabilities = ["read"]
}

# Vault 1.15+ only; OpenBao answers 404 (reported as "not offered").
path "sys/seal-backend-status" {
  capabilities = ["read"]
}

path "sys/storage/raft/autopilot/state" {
  capabilities = ["read"]
}

path "sys/storage/raft/configuration" {
  capabilities = ["read"]
}

# Each node's api_address next to its cluster address: how the probe finds every node to ask
# without a configured list (joined with the Raft configuration on the cluster address).
path "sys/ha-status" {
  capabilities = ["read"]
}

# The emergency-token job's bookkeeping (when the launcher token was last rotated).
path "secret/data/vaultkeeper/emergency-token/*" {
  capabilities = ["read"]
}

# Every job revokes its own login token when it finishes.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
