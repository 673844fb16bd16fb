# vaultkeeper-emergency-token: keeps the break-glass credential fresh (docs/emergency-token.md):
# mints a new launcher token (or AppRole secret ID), delivers it out of band, proves it, then
# revokes the one it replaces. It never needs to read or hold any other token.

# Mint a new launcher token. The token role fixes its policy (breakglass-launcher), makes it an
# orphan, non-renewable, at most 744h, without the default policy: token-role-breakglass-launcher.json.
path "auth/token/create/breakglass-launcher" {
  capabilities = ["update"]
}

# Check and revoke the previous launcher by accessor (never by the token itself). Vault cannot
# scope these to one role: any accessor can be looked up or revoked with them.
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# The optional one-shot kind (BREAKGLASS_KIND=approle-secret-id): issue a secret ID for the
# breakglass AppRole role, look it up and destroy it by its accessor (approle-role-breakglass.json).
path "auth/approle/role/breakglass/role-id" {
  capabilities = ["read"]
}

path "auth/approle/role/breakglass/secret-id" {
  capabilities = ["update"]
}

path "auth/approle/role/breakglass/secret-id-accessor/lookup" {
  capabilities = ["update"]
}

path "auth/approle/role/breakglass/secret-id-accessor/destroy" {
  capabilities = ["update"]
}

# The job's state record (accessor, times, fingerprint, sink; never the credential), written with
# check-and-set. Reading metadata tells a deleted record from one never written.
path "secret/data/vaultkeeper/emergency-token/*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/vaultkeeper/emergency-token/*" {
  capabilities = ["read"]
}

# The Bitwarden machine-account access token (experimental Bitwarden sink only).
path "secret/data/vaultkeeper/bitwarden/emergency-token" {
  capabilities = ["read"]
}

# Every job revokes its own login token when it finishes.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
