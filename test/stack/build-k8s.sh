#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from the Go module proxy, and helm, into a
# cache outside the repo keyed by version, so later runs on the same machine reuse them.
# kube-apiserver's staging modules are published at v0.Y.Z while k8s.io/kubernetes's own
# go.mod names them at v0.0.0 (with replace lines to ./staging), hence the generated replaces.
set -euo pipefail
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
CACHE="${VAULTKEEPER_CACHE:-$HOME/.cache/vaultkeeper}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

# Bump when the build recipe changes, so cached binaries from an older recipe are rebuilt.
RECIPE=2
TAG="$K8S_VERSION-r$RECIPE"
want() { [ ! -x "$BIN/$1" ]; }

if want "kube-apiserver-$TAG" || want "kubectl-$TAG" || want "etcd-$TAG"; then
  work="$CACHE/build/k8s-$K8S_VERSION"
  mkdir -p "$work"
  cd "$work"
  minor="${K8S_VERSION#v1.}"            # 34.4
  staging="v0.$minor"                   # v0.34.4
  major_minor="${minor%%.*}"            # 34
  # Stamp the version the way the Kubernetes release build does; without it the binaries say
  # v0.0.0-master and `kubectl version` / Helm's kubeVersion checks fail.
  stamp=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp="$stamp -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$major_minor -X $pkg.gitTreeState=clean"
  done
  go mod download -json "k8s.io/kubernetes@$K8S_VERSION" > mod.json
  gomod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' mod.json)
  {
    echo "module vaultkeeper.local/k8sbin"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    grep -E '^\s+k8s.io/[a-z0-9-]+ v0.0.0$' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } > go.mod
  mkdir -p apiserver
  cat > apiserver/main.go <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
GO
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  export GOFLAGS=-mod=mod
  # tidy resolves etcd's server module at the version k8s.io/kubernetes itself requires.
  go mod tidy
  go build -trimpath -ldflags="-s -w $stamp" -o "$BIN/kube-apiserver-$TAG.tmp" ./apiserver
  mv "$BIN/kube-apiserver-$TAG.tmp" "$BIN/kube-apiserver-$TAG"
  go build -trimpath -ldflags="-s -w $stamp" -o "$BIN/kubectl-$TAG.tmp" k8s.io/kubernetes/cmd/kubectl
  mv "$BIN/kubectl-$TAG.tmp" "$BIN/kubectl-$TAG"
  go build -trimpath -ldflags='-s -w' -o "$BIN/etcd-$TAG.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd-$TAG.tmp" "$BIN/etcd-$TAG"
fi

if want "helm-$HELM_VERSION"; then
  GOBIN="$CACHE/build/helm-$HELM_VERSION" go install -trimpath -ldflags='-s -w' "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$CACHE/build/helm-$HELM_VERSION/helm" "$BIN/helm-$HELM_VERSION"
fi

for b in kube-apiserver kubectl etcd; do ln -sf "$b-$TAG" "$BIN/$b"; done
ln -sf "helm-$HELM_VERSION" "$BIN/helm"
echo "k8s binaries ready in $BIN"
