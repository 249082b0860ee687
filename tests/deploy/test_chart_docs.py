"""What the chart tells its users: Chart.yaml metadata, the README generated from values.yaml
(`helm show readme`), and the NOTES `helm install` prints."""

from __future__ import annotations

import re
from typing import Any

import yaml

from scripts import gen_chart_readme
from tests.deploy.chart import CHART, FULL, ROOT, helm, notes


def test_the_committed_readme_is_generated_from_values_yaml() -> None:
    committed = (CHART / "README.md").read_text()
    assert committed == gen_chart_readme.readme(), (
        "deploy/helm/vsm/README.md is stale: run `uv run scripts/gen_chart_readme.py`"
    )


def test_every_value_has_a_row_and_the_documented_ones_say_what_they_do() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    readme = (CHART / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([^`]+)` \| \w+ \| [^|]*\| (.*) \|$", readme, re.MULTILINE))
    for path, _, _ in gen_chart_readme.rows(values, {}, ()):
        assert ".".join(path) in rows, path
    for key in ("secrets.readTokens", "default.metricsPort", "rabbitmq.mode"):
        assert rows[key], f"{key} has no description"
    assert "EGRESS_ALLOWED_URLS" in rows["components.operations.egress.allowedUrls"]


def test_the_comment_parser_reads_blocks_and_inline_comments() -> None:
    text = "# top\n\na:\n  # about b\n  # more\n  b: 1  # inline\n  c: 2\n- x\nd: 3\n"
    assert gen_chart_readme.descriptions(text) == {
        ("a",): "",
        ("a", "b"): "about b more inline",
        ("a", "c"): "",
        ("d",): "",
    }


def test_helm_show_readme_prints_it() -> None:
    shown = helm().show(str(CHART), output_format="readme")
    assert shown.strip() == (CHART / "README.md").read_text().strip()
    assert "## Values" in shown


def test_chart_metadata_names_home_sources_maintainers_and_icon() -> None:
    chart: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for key in ("home", "icon", "kubeVersion", "description"):
        assert chart[key], key
    assert chart["sources"]
    assert all(m["name"] for m in chart["maintainers"])
    assert "viable-system-model" in chart["keywords"]
    assert chart["annotations"]["artifacthub.io/license"] == "Apache-2.0"
    icon = chart["icon"].rsplit("/main/", 1)[1]
    assert (ROOT / icon).exists(), f"the icon {icon} is not in the repository"
    repository = chart["home"].removeprefix("https://github.com/")
    assert f"raw.githubusercontent.com/{repository}/" in chart["icon"]


def test_notes_say_how_to_get_the_token_and_reach_everything() -> None:
    text = notes()
    assert (
        "kubectl -n vsm get secret vsm-secrets -o jsonpath='{.data.MCP_AUTH_TOKEN}' | base64 -d"
        in text
    )
    assert "kubectl -n vsm port-forward svc/vsm-mcp-gateway 8000:8080" in text
    assert 'curl -H "Authorization: Bearer $VSM_TOKEN" localhost:8000/api/vsm/status' in text
    assert "http://localhost:8000/mcp" in text
    assert "web console: http://localhost:8000/" in text
    assert "vsm status" in text  # the CLI
    assert "vsm / overview" in text  # the dashboards
    assert "helm test vsm -n vsm" in text


def test_notes_follow_the_values() -> None:
    full = notes(FULL)
    assert "https://vsm.example.com/api/vsm/status" in full
    assert "PrometheusRule vsm alerts" in full
    assert "Read tokens (secrets.readTokens)" in full
    silent = notes({"secrets": {"generateMcpAuthToken": False}})
    assert "WARNING: no token is configured" in silent
    assert "the API answers 503" in silent
    egress = {"allowedUrls": ["http://api.example.com:8080/"], "allowedPrivate": ["db.x.svc:5432"]}
    odd = notes({"components": {"operations": {"enabled": True, "egress": egress}}})
    assert "add 8080 to networkPolicy.internet.ports" in odd
    assert "extraEgress" in odd
    assert "NOTE" not in notes({"components": {"operations": {"enabled": True}}})
