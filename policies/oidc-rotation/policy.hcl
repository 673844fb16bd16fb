# vaultkeeper-oidc-rotation: rotates the OIDC client secret that Vault shares with Authentik
# and proves that the OIDC login still works afterwards.

# Read the current OIDC auth configuration and write the new client secret into it.
path "auth/oidc/config" {
  capabilities = ["read", "update"]
}

# Check the roles that users log in with.
path "auth/oidc/role/*" {
  capabilities = ["read"]
}

# Start an OIDC login (auth URL) to check the new secret end to end.
path "auth/oidc/oidc/auth_url" {
  capabilities = ["update"]
}

# The job's own state: rotation bookkeeping, previous secret for rollback.
path "secret/data/vaultkeeper/oidc-rotation/*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/vaultkeeper/oidc-rotation/*" {
  capabilities = ["create", "read", "update"]
}

# The Authentik API token the job uses to set the new secret on the Authentik side.
path "secret/data/vaultkeeper/authentik/*" {
  capabilities = ["read"]
}

# Every job revokes its own login token when it finishes.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
