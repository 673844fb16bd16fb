# breakglass-launcher: the policy of the long-lived break-glass token kept in Bitwarden.
# It can do exactly one thing: mint a short-lived admin token through the token role
# breakglass-admin (non-renewable, at most 1h: token-role-breakglass-admin.json).
path "auth/token/create/breakglass-admin" {
  capabilities = ["update"]
}
