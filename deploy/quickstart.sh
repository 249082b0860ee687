#!/usr/bin/env bash
# vsm on a local Kubernetes (kind or minikube), from a checkout: build the seven images, load
# them into the cluster, install the chart, wait, run `helm test`, print how to reach it.
#
#   deploy/quickstart.sh            # kind (creates the cluster "vsm" if it does not exist)
#   CLUSTER=minikube deploy/quickstart.sh
#
# Needs docker, helm (v3.8+) and kind or minikube. Every pod meets the restricted Pod
# Security Standard; kind's default CNI does not enforce NetworkPolicies (they are rendered
# and do no harm).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-kind}
NAME=${NAME:-vsm}
NAMESPACE=${NAMESPACE:-vsm}
VERSION=$(cat VERSION)
FULLNAME=$NAME  # the chart's names: <release> when it contains "vsm", else <release>-vsm
[[ $NAME == *vsm* ]] || FULLNAME=$NAME-vsm
SERVICES=(queen intelligence control coordinator operations telegram-gateway mcp-gateway)

need() { command -v "$1" >/dev/null 2>&1 || { echo "quickstart: $1 is required" >&2; exit 2; }; }
need docker
need helm
need kubectl
case "$CLUSTER" in
  kind)
    need kind
    kind get clusters | grep -qx "$NAME" || kind create cluster --name "$NAME"
    load() { kind load docker-image --name "$NAME" "$1"; } ;;
  minikube)
    need minikube
    minikube status >/dev/null 2>&1 || minikube start
    load() { minikube image load "$1"; } ;;
  *) echo "quickstart: CLUSTER must be kind or minikube, not $CLUSTER" >&2; exit 2 ;;
esac

for service in "${SERVICES[@]}"; do
  image="vsm-$service:$VERSION"
  echo "building $image"
  docker build --quiet --build-arg SERVICE="$service" -t "$image" .
  load "$image"
done

kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl label --overwrite namespace "$NAMESPACE" pod-security.kubernetes.io/enforce=restricted
password=$(openssl rand -hex 16)
helm upgrade --install "$NAME" deploy/helm/vsm --namespace "$NAMESPACE" \
  --set rabbitmq.auth.password="$password" --wait --timeout 10m
helm test "$NAME" --namespace "$NAMESPACE" --logs

token=$(kubectl -n "$NAMESPACE" get secret "$FULLNAME-secrets" -o jsonpath='{.data.MCP_AUTH_TOKEN}' | base64 -d)
cat <<DONE

vsm $VERSION runs in $CLUSTER, namespace $NAMESPACE. The broker password is kept in the
release's Secret $FULLNAME-broker; pass the same rabbitmq.auth.password to every upgrade.

  kubectl -n $NAMESPACE port-forward svc/$FULLNAME-mcp-gateway 8000:8080 &
  export VSM_URL=http://localhost:8000 VSM_TOKEN=$token
  curl -H "Authorization: Bearer \$VSM_TOKEN" \$VSM_URL/api/vsm/status
  uv run vsm status
DONE
