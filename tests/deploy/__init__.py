"""Tests of the Helm chart (deploy/helm/vsm) and the manifests rendered from it (deploy/k8s)."""
