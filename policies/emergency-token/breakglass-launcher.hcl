# breakglass-launcher: the policy of the long-lived break-glass launcher token kept out of band
# (S3 envelope or Bitwarden). It can do exactly one thing: mint a short-lived admin token through
# the token role breakglass-admin (non-renewable, at most 1h: token-role-breakglass-admin.json).
# The launcher role sets token_no_default_policy, so nothing else comes with it.
path "auth/token/create/breakglass-admin" {
  capabilities = ["update"]
}

# Introspection only, so that the emergency-token job (and an operator) can prove a launcher works
# without minting anything: who am I, and may I mint through breakglass-admin?
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "sys/capabilities-self" {
  capabilities = ["update"]
}
