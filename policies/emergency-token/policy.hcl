# vaultkeeper-emergency-token: keeps a break-glass launcher token (token role
# breakglass-launcher) fresh, stores it in Bitwarden and revokes the one it replaces.

# Mint a new launcher token. The token role fixes its policy (breakglass-launcher), makes it
# an orphan, non-renewable, at most 744h: see token-role-breakglass-launcher.json.
path "auth/token/create/breakglass-launcher" {
  capabilities = ["update"]
}

# Check and revoke the previous launcher token by accessor (never by the token itself).
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# The job's own state (current accessor, rotation times).
path "secret/data/vaultkeeper/emergency-token/*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/vaultkeeper/emergency-token/*" {
  capabilities = ["create", "read", "update"]
}

# Credentials for the Bitwarden vault the launcher token is stored in.
path "secret/data/vaultkeeper/bitwarden/*" {
  capabilities = ["read"]
}

# Every job revokes its own login token when it finishes.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
