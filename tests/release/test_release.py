"""One version everywhere, and what `make release-check` validates, each check shown to catch
what it is for. The full check (every package, every service's build stage) is
`make release-check`; here one package and one service stand for them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts import release

FILES = ("VERSION", "pyproject.toml", *release.IMAGE_FILES, "deploy/helm/vsm/Chart.yaml")


def test_every_place_states_the_project_version() -> None:
    version = release.project_version()
    found = [*release.mentions(), *release.installed_mentions()]
    assert release.disagreements(found, version) == []
    places = {m.place for m in found}
    assert "Chart.yaml appVersion" in places
    assert any(p.startswith("docker-compose.yml: vsm-mcp-gateway:") for p in places)
    assert any(p.startswith("docs/openapi/") for p in places)
    assert "vsm.kit.version.VERSION (OpenAPI, MCP server)" in places
    assert sum(p.endswith("(installed)") for p in places) == len(release.members())


def copy_of_the_repository(tmp_path: Path) -> Path:
    for name in (*FILES, "docs/openapi", "docs/asyncapi", "libs", "services", "tools", "examples"):
        source, target = release.ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "tests")
            shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    return tmp_path


def test_a_place_that_disagrees_is_named(tmp_path: Path) -> None:
    root = copy_of_the_repository(tmp_path)
    chart = root / "deploy/helm/vsm/Chart.yaml"
    chart.write_text(chart.read_text().replace('appVersion: "', 'appVersion: "9', 1))
    version = release.project_version(root)
    problems = release.disagreements(release.mentions(root), version)
    assert problems == [f"Chart.yaml appVersion says 9{version}, VERSION says {version}"]


def test_set_version_writes_every_place(tmp_path: Path) -> None:
    root = copy_of_the_repository(tmp_path)
    release.write_version("2.3.4", root)
    written = [*release.package_mentions(root), *release.chart_mentions(root)]
    written += release.image_mentions(root)
    assert release.disagreements(written, "2.3.4") == []
    with pytest.raises(ValueError, match="not a version"):
        release.write_version("2.3", root)


def test_the_dockerfile_holds_together() -> None:
    assert release.dockerfile_problems() == []


def test_the_dockerfile_check_finds_what_a_build_would_trip_over(tmp_path: Path) -> None:
    root = copy_of_the_repository(tmp_path)
    shutil.copy2(release.ROOT / ".dockerignore", root / ".dockerignore")
    dockerfile = (release.ROOT / "Dockerfile").read_text()
    broken = dockerfile.replace("COPY libs ./libs", "COPY libs ./libs\nCOPY plugins ./plugins")
    broken = broken.replace("FROM python:3.11-slim AS build", "FROM python:3.13-slim AS build")
    broken = broken.replace("ghcr.io/astral-sh/uv:0.13", "ghcr.io/astral-sh/uv:latest")
    broken = broken.replace("USER 10001:10001", "USER 0")
    (root / "Dockerfile").write_text(broken)
    problems = release.dockerfile_problems(root)
    assert "COPY plugins: not in the build context" in problems
    assert any(p.startswith("FROM python:3.13-slim") for p in problems)
    assert any("pin the image" in p for p in problems)
    assert any(p.startswith("USER 0") for p in problems)


def test_the_build_stage_installs_a_service_offline() -> None:
    assert release.build_stage_problems("coordinator") == []


def test_a_package_builds_with_version_licence_and_entry_point(tmp_path: Path) -> None:
    version = release.project_version()
    built = release.build_packages(tmp_path, ["vsm-coordinator"])
    assert {p.name for p in built} == {
        f"vsm_coordinator-{version}-py3-none-any.whl",
        f"vsm_coordinator-{version}.tar.gz",
    }
    for path in built:
        check = release.wheel_problems if path.suffix == ".whl" else release.sdist_problems
        assert check(path, version) == []
        assert check(path, "9.9.9") == [f"{path.name}: Version {version}, not 9.9.9"]


def test_the_chart_packages_and_validates(tmp_path: Path) -> None:
    version = release.project_version()
    archive = release.package_chart(tmp_path)
    assert release.chart_archive_problems(archive, version) == []
    assert release.chart_archive_problems(archive, "9.9.9") != []
