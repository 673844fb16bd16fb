# vaultkeeper-secret-sweep: walks the KV v2 engine at secret/ read-only and writes its
# backups under its own prefix.
#
# The whole of secret/ is the default. Real installs narrow these two paths to the prefixes
# the sweep is configured for (the job's paths setting); keep both in step.
path "secret/data/*" {
  capabilities = ["read", "list"]
}

path "secret/metadata/*" {
  capabilities = ["read", "list"]
}

# The other jobs' own records (break-glass state, OIDC rotation record): copies of credentials
# the sweep never needs and never counts as evidence of a migration. Deny wins over the
# globs above.
path "secret/data/vaultkeeper/emergency-token/*" {
  capabilities = ["deny"]
}

path "secret/data/vaultkeeper/oidc-rotation/*" {
  capabilities = ["deny"]
}

# Its backups: the more specific path wins over secret/data/* above.
path "secret/data/vaultkeeper/secret-sweep/backup/*" {
  capabilities = ["create", "read", "update"]
}

# Every job revokes its own login token when it finishes.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
