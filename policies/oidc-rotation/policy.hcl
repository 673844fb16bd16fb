# vaultkeeper-oidc-rotation: keeps the OIDC client secret Vault shares with Authentik in step
# (sync) and rotates it (rotate), then proves a login would still work.
# For another mount than auth/oidc/, replace "auth/oidc/" below (the job's oidc.mount).

# Read the whole OIDC auth config, and write it back whole with only the client secret changed
# (a write replaces the config, so the job needs the read to carry every other field over).
path "auth/oidc/config" {
  capabilities = ["read", "update"]
}

# The role whose allowed_redirect_uris the login check uses (oidc.role, else default_role).
path "auth/oidc/role/*" {
  capabilities = ["read"]
}

# After writing, check that Vault can still start a login (builds the Authentik authorize URL).
path "auth/oidc/oidc/auth_url" {
  capabilities = ["update"]
}

# The rotation record (KV v2, check-and-set writes): current, previous and pending secret, claim.
path "secret/data/vaultkeeper/oidc-rotation/*" {
  capabilities = ["create", "read", "update"]
}

# The Authentik API token (a non-expiring API-intent token), read only.
path "secret/data/vaultkeeper/authentik/api-token" {
  capabilities = ["read"]
}

# Every job revokes its own login token when it finishes.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
