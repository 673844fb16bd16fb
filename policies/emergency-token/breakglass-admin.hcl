# breakglass-admin: what a break-glass admin token may do. This is the operator's admin
# policy; replace it with your own. The default here (and in the local stack) is full admin.
path "*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"]
}
