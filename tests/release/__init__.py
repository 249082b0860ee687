"""Tests of the release machinery (scripts/release.py): one version, packages, chart, Dockerfile."""
