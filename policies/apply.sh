#!/usr/bin/env bash
# The one-time Vault side of a vaultkeeper install (run it again after any change here): writes
# every policy, token role and Kubernetes-auth role under policies/, exactly as the local stack
# bootstraps them (test/stack/policies.ts reads the same layout):
#   policies/<job>/policy.hcl              -> ACL policy vaultkeeper-<job>
#   policies/<job>/<name>.hcl              -> ACL policy <name>
#   policies/<job>/token-role-<name>.json  -> auth/token/roles/<name>
#   policies/<job>/kubernetes-role.json    -> auth/<mount>/role/vaultkeeper-<job>
#
# Needs the vault or bao CLI, VAULT_ADDR, and a VAULT_TOKEN that may write those paths.
#   VAULTKEEPER_NAMESPACE  namespace the chart is installed in (default vaultkeeper); the roles
#                          bind the jobs' ServiceAccounts in this namespace only
#   VAULT_K8S_AUTH_MOUNT   Kubernetes auth mount of the cluster the jobs run in (default kubernetes)
#   VAULTKEEPER_JOBS       space-separated jobs to apply (default: every folder here)
# Writing is idempotent: the same files give the same policies and roles.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
namespace="${VAULTKEEPER_NAMESPACE:-vaultkeeper}"
mount="${VAULT_K8S_AUTH_MOUNT:-kubernetes}"
cli="${VAULT_CLI:-$(command -v vault || command -v bao || true)}"
if [ -z "$cli" ]; then
  echo "neither vault nor bao is on PATH (or set VAULT_CLI)" >&2
  exit 2
fi
: "${VAULT_ADDR:?set VAULT_ADDR to your Vault}"

jobs="${VAULTKEEPER_JOBS:-}"
if [ -z "$jobs" ]; then
  for d in "$here"/*/; do jobs="$jobs $(basename "$d")"; done
fi

for job in $jobs; do
  dir="$here/$job"
  [ -d "$dir" ] || { echo "no folder policies/$job" >&2; exit 2; }
  for f in "$dir"/*.hcl; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .hcl)"
    [ "$name" = policy ] && name="vaultkeeper-$job"
    "$cli" policy write "$name" "$f" >/dev/null
    echo "policy      $name"
  done
  for f in "$dir"/token-role-*.json; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .json)"
    name="${name#token-role-}"
    "$cli" write "auth/token/roles/$name" "@$f" >/dev/null
    echo "token role  $name"
  done
  if [ -e "$dir/kubernetes-role.json" ]; then
    "$cli" write "auth/$mount/role/vaultkeeper-$job" "@$dir/kubernetes-role.json" >/dev/null
    # The file binds namespace "vaultkeeper". A second write changes only the field it names
    # (a key=value next to @file would be appended to the file's list instead of replacing it).
    "$cli" write "auth/$mount/role/vaultkeeper-$job" "bound_service_account_namespaces=$namespace" >/dev/null
    echo "k8s role    auth/$mount/role/vaultkeeper-$job (ServiceAccounts in namespace $namespace)"
  fi
done
