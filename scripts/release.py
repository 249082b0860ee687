"""Release machinery: the project's one version, and the offline release check.

    uv run scripts/release.py version             # the version, from the file VERSION
    uv run scripts/release.py set-version 0.2.0   # write it everywhere it is spelt out
    uv run scripts/release.py check               # make release-check

Every package reads VERSION at build time (hatchling's regex version source); the chart,
the compose file, the root pyproject and the docs spell it out, and `set-version` rewrites
them. `check` fails when any place disagrees, builds every wheel and sdist and the chart
package into dist/<version>/ and validates them, and checks the Dockerfile without Docker.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "vsm"
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")
SERVICES = tuple(sorted(p.name for p in (ROOT / "services").iterdir() if p.is_dir()))
IMAGE = re.compile(r"\bvsm-(" + "|".join(map(re.escape, SERVICES)) + r"):(\d[\w.+-]*)")
# Where the images are named with a tag, for people to copy.
IMAGE_FILES = (
    "docker-compose.yml",
    "README.md",
    "deploy/README.md",
    "deploy/helm/vsm/values.yaml",
    "examples/Dockerfile.host",
    "examples/agents/README.md",
)
LICENSE_EXPRESSION = "Apache-2.0"


@dataclass(frozen=True)
class Mention:
    """One place that states the project's version."""

    place: str
    version: str


def project_version(root: Path = ROOT) -> str:
    return (root / "VERSION").read_text().strip()


def members(root: Path = ROOT) -> dict[str, Path]:
    """Package name -> directory, for every package of the uv workspace."""
    found = {}
    for pattern in tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"]["workspace"][
        "members"
    ]:
        # Directories only, as uv reads the globs: a file beside them (examples/Dockerfile.host)
        # is no package.
        for directory in sorted(p for p in root.glob(pattern) if p.is_dir()):
            project = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
            found[project["name"]] = directory
    return found


def package_mentions(root: Path = ROOT) -> list[Mention]:
    """Each package takes its version from VERSION (else its static one is reported)."""
    found = [
        Mention(
            "pyproject.toml (workspace root)",
            tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"],
        )
    ]
    for name, directory in members(root).items():
        config = tomllib.loads((directory / "pyproject.toml").read_text())
        source = config.get("tool", {}).get("hatch", {}).get("version", {}).get("path", "")
        dynamic = "version" in config["project"].get("dynamic", [])
        reads_file = dynamic and (directory / source).resolve() == (root / "VERSION").resolve()
        version = project_version(root) if reads_file else f"{config['project'].get('version')}"
        found.append(Mention(f"{name} (pyproject: version from VERSION)", version))
    return found


def chart_mentions(root: Path = ROOT) -> list[Mention]:
    chart = yaml.safe_load((root / "deploy/helm/vsm/Chart.yaml").read_text())
    return [
        Mention("Chart.yaml version", str(chart["version"])),
        Mention("Chart.yaml appVersion", str(chart["appVersion"])),
    ]


def image_mentions(root: Path = ROOT) -> list[Mention]:
    return [
        Mention(f"{name}: vsm-{service}:{tag}", tag)
        for name in IMAGE_FILES
        for service, tag in IMAGE.findall((root / name).read_text())
    ]


def document_mentions(root: Path = ROOT) -> list[Mention]:
    """The `info.version` of the generated AsyncAPI and OpenAPI documents."""
    paths = sorted((root / "docs").glob("asyncapi/*.json")) + sorted(
        (root / "docs").glob("openapi/*.json")
    )
    return [
        Mention(str(p.relative_to(root)), json.loads(p.read_text())["info"]["version"])
        for p in paths
    ]


def installed_mentions() -> list[Mention]:
    """What the environment's packages (and so the running services) announce."""
    from vsm.kit.version import VERSION

    found = [Mention("vsm.kit.version.VERSION (OpenAPI, MCP server)", VERSION)]
    for name in members():
        found.append(Mention(f"{name} (installed)", importlib.metadata.version(name)))
    return found


def mentions(root: Path = ROOT) -> list[Mention]:
    return [
        *package_mentions(root),
        *chart_mentions(root),
        *image_mentions(root),
        *document_mentions(root),
    ]


def disagreements(found: Iterable[Mention], version: str) -> list[str]:
    problems = [] if SEMVER.match(version) else [f"VERSION {version!r} is not X.Y.Z"]
    return problems + [
        f"{m.place} says {m.version}, VERSION says {version}" for m in found if m.version != version
    ]


def write_version(version: str, root: Path = ROOT) -> None:
    """Rewrite every place that spells the version out (not the generated files)."""
    if not SEMVER.match(version):
        raise ValueError(f"{version!r} is not a version X.Y.Z")
    (root / "VERSION").write_text(version + "\n")
    rewrite(root / "pyproject.toml", r'(?m)^version = "[^"]*"', f'version = "{version}"')
    chart = root / "deploy/helm/vsm/Chart.yaml"
    rewrite(chart, r"(?m)^version: .*$", f"version: {version}")
    rewrite(chart, r"(?m)^appVersion: .*$", f'appVersion: "{version}"')
    for name in IMAGE_FILES:
        rewrite(root / name, IMAGE.pattern, rf"vsm-\1:{version}")


def rewrite(path: Path, pattern: str, replacement: str) -> None:
    path.write_text(re.sub(pattern, replacement, path.read_text()))


def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """One of our commands (uv, docker, the CLI of a built environment), output captured."""
    executable = shutil.which(command[0]) or command[0]
    return subprocess.run(  # noqa: S603 - fixed commands of this script
        [executable, *command[1:]], check=False, capture_output=True, text=True, **options
    )


def set_version(version: str) -> None:
    """Write the version, then regenerate what carries it (environment, API docs, manifests)."""
    write_version(version)
    for command in (
        ["uv", "lock"],
        ["uv", "sync", "--frozen"],
        ["uv", "run", "--frozen", "python", "scripts/gen_docs.py"],
        ["uv", "run", "--frozen", "python", "scripts/gen_chart_readme.py"],
        ["uv", "run", "--frozen", "python", "scripts/render-manifests"],
    ):
        done = run(command, cwd=ROOT)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    print(f"version {version}: add a section for it in CHANGELOG.md, then commit")


# --- packages -------------------------------------------------------------------------------


def build_packages(out: Path, packages: Iterable[str] = ()) -> list[Path]:
    """Wheels and sdists of every workspace package (or of `packages`), built offline."""
    selection = [arg for name in packages for arg in ("--package", name)] or ["--all-packages"]
    command = ["uv", "build", *selection, "--offline", "--out-dir", str(out)]
    done = run(command, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"uv build failed:\n{done.stderr}")
    return sorted(p for p in out.iterdir() if p.suffix in {".whl", ".gz"})


def metadata_of(text: str) -> email.message.Message:
    return email.parser.Parser().parsestr(text)


def wheel_problems(path: Path, version: str) -> list[str]:
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = metadata_of(wheel.read(f"{info}/METADATA").decode())
        entry_points = (
            wheel.read(f"{info}/entry_points.txt").decode()
            if (f"{info}/entry_points.txt" in names)
            else ""
        )
    problems = metadata_problems(meta, version)
    if f"{info}/licenses/LICENSE" not in names:
        problems.append("no LICENSE in the wheel's .dist-info/licenses")
    if "vsm/__init__.py" in names:
        problems.append("vsm/__init__.py would shadow the other packages' share of namespace vsm")
    module = meta["Name"].removeprefix("vsm-").replace("-", "_")
    own = meta["Name"].replace("-", "_")  # a package outside the namespace (examples/)
    if not any(n.startswith((f"vsm/{module}/", f"{own}/")) for n in names):
        problems.append(f"no module vsm/{module}/ (nor {own}/)")
    service = meta["Name"].removeprefix("vsm-")
    if service in SERVICES and f"vsm-{service} = " not in entry_points:
        problems.append(f"no console script vsm-{service} (the image's entry point)")
    return [f"{path.name}: {p}" for p in problems]


def sdist_problems(path: Path, version: str) -> list[str]:
    with tarfile.open(path) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        names = set(sdist.getnames())
        pkg_info = sdist.extractfile(f"{top}/PKG-INFO")
        meta = metadata_of(pkg_info.read().decode()) if pkg_info else metadata_of("")
    problems = metadata_problems(meta, version)
    problems += [f"no {f}" for f in ("pyproject.toml", "LICENSE") if f"{top}/{f}" not in names]
    return [f"{path.name}: {p}" for p in problems]


def metadata_problems(meta: email.message.Message, version: str) -> list[str]:
    problems = []
    if meta["Version"] != version:
        problems.append(f"Version {meta['Version']}, not {version}")
    if meta["License-Expression"] != LICENSE_EXPRESSION:
        problems.append(f"License-Expression {meta['License-Expression']}")
    if not meta["Requires-Python"]:
        problems.append("no Requires-Python")
    return problems


def clashing_files(wheels: Iterable[Path]) -> list[str]:
    """Files that two wheels would both install (the packages share namespace `vsm`)."""
    owner: dict[str, str] = {}
    clashes = []
    for path in wheels:
        with zipfile.ZipFile(path) as wheel:
            for name in wheel.namelist():
                if ".dist-info/" in name:
                    continue
                if name in owner:
                    clashes.append(f"{name} is in {owner[name]} and {path.name}")
                owner[name] = path.name
    return clashes


def install_problems(wheels: list[Path], version: str) -> list[str]:
    """Install the wheels into a new environment, offline, beside their dependencies as the
    lock pins them (not the workspace's own packages), and run the CLI from it."""
    with tempfile.TemporaryDirectory(prefix="vsm-release-") as scratch:
        venv = Path(scratch) / "venv"
        sync = ["uv", "sync", "--frozen", "--no-dev", "--all-packages", "--offline"]
        steps = [
            ([*sync, "--no-install-workspace"], uv_environment(UV_PROJECT_ENVIRONMENT=str(venv))),
            (
                ["uv", "pip", "install", "--offline", "--no-deps", "--python", str(venv)]
                + [str(w) for w in wheels],
                None,
            ),
            (["uv", "pip", "check", "--python", str(venv)], None),
        ]
        for command, env in steps:
            done = run(command, cwd=ROOT, env=env)
            if done.returncode:
                output = (done.stdout + done.stderr).strip()[-2000:]
                return [f"{' '.join(command[:3])} in a new environment failed: {output}"]
        answer = run([str(venv / "bin" / "vsm"), "--version"])
    if version not in answer.stdout:
        return [f"`vsm --version` from the wheels says {answer.stdout.strip()!r}"]
    return []


# --- chart ----------------------------------------------------------------------------------


def package_chart(out: Path) -> Path:
    import helm_python

    return Path(helm_python.package(str(CHART), destination=str(out)))


def chart_archive_problems(path: Path, version: str) -> list[str]:
    import helm_python

    problems = []
    if path.name != f"vsm-{version}.tgz":
        problems.append(f"archive {path.name}, not vsm-{version}.tgz")
    with tarfile.open(path) as archive:
        names = set(archive.getnames())
    wanted = ("Chart.yaml", "values.yaml", "values.schema.json", "README.md", "templates/NOTES.txt")
    problems += [f"no {f} in the archive" for f in wanted if f"vsm/{f}" not in names]
    report = helm_python.lint(str(path), strict=True)
    problems += [m["error"] for m in report["messages"] if m["severity"] >= 2]
    problems += list(report["errors"])
    with helm_python.Chart.load_archive(path.read_bytes()) as chart:
        meta = chart.metadata
        rendered = chart.render(None, name="vsm", namespace="vsm", is_install=True)
    if (meta["version"], meta["appVersion"]) != (version, version):
        problems.append(f"Chart.yaml says {meta['version']}/{meta['appVersion']}")
    tags = set(IMAGE.findall("".join(rendered.values())))
    problems += [f"renders image vsm-{s}:{t}" for s, t in tags if t != version]
    readme = helm_python.show(str(path), output_format="readme")
    if readme.strip() != (CHART / "README.md").read_text().strip():
        problems.append("`helm show readme` is not the chart's README.md")
    return [f"{path.name}: {p}" for p in problems]


# --- Dockerfile -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append(Instruction(keyword.upper(), arguments.strip()))
    return found


def ignored(path: str, root: Path) -> bool:
    """Whether .dockerignore keeps `path` out of the build context."""
    rules = root / ".dockerignore"
    patterns = rules.read_text().split() if rules.exists() else []
    return any(Path(path).match(p) or path.split("/", 1)[0] == p for p in patterns)


def dockerfile_problems(root: Path = ROOT) -> list[str]:
    """What a build would trip over, found without Docker: sources, images, user, port."""
    steps = instructions((root / "Dockerfile").read_text())
    problems = []
    python = tomllib.loads((root / "pyproject.toml").read_text())["project"]["requires-python"]
    lowest = python.removeprefix(">=")
    for step in steps:
        words = step.arguments.split()
        if step.keyword == "FROM" and not words[0].startswith(f"python:{lowest}-slim"):
            problems.append(f"FROM {words[0]}: the policy is python:{lowest}-slim ({python})")
        if step.keyword != "COPY":
            continue
        image = next((w.removeprefix("--from=") for w in words if w.startswith("--from=")), "")
        if image and "/" in image and not re.search(r":\d+(\.\d+)*$", image):
            problems.append(f"COPY --from={image}: pin the image to a version tag")
        sources = [w for w in words if not w.startswith("--")][:-1]
        for source in [] if image else sources:
            if not (root / source).exists():
                problems.append(f"COPY {source}: not in the build context")
            elif ignored(source, root):
                problems.append(f"COPY {source}: excluded by .dockerignore")
    problems += image_contract_problems(steps)
    return problems


def image_contract_problems(steps: list[Instruction]) -> list[str]:
    """The user, port and entry point the chart and compose rely on."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["default"]
    keywords = {s.keyword: s.arguments for s in steps}
    problems = []
    user = str(values["securityContext"]["runAsUser"])
    if keywords.get("USER", "").split(":")[0] != user:
        problems.append(f"USER {keywords.get('USER')}: the chart runs as {user}")
    if keywords.get("EXPOSE") != "8080":
        problems.append(f"EXPOSE {keywords.get('EXPOSE')}: the chart's containers listen on 8080")
    if "vsm-${VSM_SERVICE}" not in keywords.get("ENTRYPOINT", ""):
        problems.append("ENTRYPOINT does not run vsm-${VSM_SERVICE}")
    return problems


def build_stage_problems(service: str, root: Path = ROOT) -> list[str]:
    """The build stage's `uv sync`, run offline on exactly what the Dockerfile copies."""
    steps = instructions((root / "Dockerfile").read_text())
    with tempfile.TemporaryDirectory(prefix="vsm-context-") as scratch:
        context = Path(scratch)
        for step in steps:
            words = step.arguments.split()
            if step.keyword != "COPY" or any(w.startswith("--from=") for w in words):
                continue
            for source in words[:-1]:
                copy_into(root / source, context / source)
        command = ["uv", "sync", "--frozen", "--no-dev", "--no-editable", "--offline"]
        done = run(
            [*command, "--package", f"vsm-{service}"],
            cwd=context,
            env=uv_environment(UV_PROJECT_ENVIRONMENT=str(context / "venv")),
        )
        if done.returncode:
            return [f"{service}: the build stage fails: {done.stderr.strip()[-1500:]}"]
        if not (context / "venv" / "bin" / f"vsm-{service}").exists():
            return [f"{service}: the build stage installs no vsm-{service}"]
    return []


def uv_environment(**extra: str) -> dict[str, str]:
    """This environment without the active virtualenv (uv would warn that it is not used)."""
    return {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"} | extra


def copy_into(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
    elif source.exists():
        shutil.copy2(source, target)


def docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    return run(["docker", "info"]).returncode == 0


def image_commands(version: str) -> list[list[str]]:
    return [
        ["docker", "build", "--build-arg", f"SERVICE={s}", "-t", f"vsm-{s}:{version}", "."]
        for s in SERVICES
    ]


# --- the check ------------------------------------------------------------------------------


def step(title: str, problems: list[str]) -> bool:
    print(f"{'ok  ' if not problems else 'FAIL'} {title}")
    for problem in problems:
        print(f"     {problem}")
    return not problems


def check() -> int:
    version = project_version()
    out = ROOT / "dist" / version
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    found = [*mentions(), *installed_mentions()]
    ok = step(f"one version, {version}, in {len(found)} places", disagreements(found, version))
    built = build_packages(out)
    wheels = [p for p in built if p.suffix == ".whl"]
    sdists = [p for p in built if p.suffix == ".gz"]
    expected = len(members())
    ok &= step(
        f"{len(wheels)} wheels and {len(sdists)} sdists in {out.relative_to(ROOT)}",
        [] if len(wheels) == len(sdists) == expected else [f"{expected} packages expected"],
    )
    problems = [p for w in wheels for p in wheel_problems(w, version)]
    problems += [p for s in sdists for p in sdist_problems(s, version)]
    ok &= step("package metadata, licence, modules, entry points", problems)
    ok &= step("no two wheels install the same file", clashing_files(wheels))
    ok &= step("the wheels install offline in a new environment", install_problems(wheels, version))
    archive = package_chart(out)
    ok &= step(f"chart {archive.name}", chart_archive_problems(archive, version))
    ok &= step("Dockerfile: sources, base images, user, port, entry point", dockerfile_problems())
    stages = [p for service in SERVICES for p in build_stage_problems(service)]
    ok &= step("Dockerfile build stage (uv sync, offline) for every service", stages)
    ok &= images(version)
    return 0 if ok else 1


def images(version: str) -> bool:
    commands = image_commands(version)
    if not docker_engine():
        print("skip images: no Docker engine answers here; build them with")
        for command in commands:
            print("     " + " ".join(command))
        return True
    return step(
        "images built",
        [" ".join(c) for c in commands if run(c, cwd=ROOT).returncode],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("version", help="print the project's version")
    setter = commands.add_parser("set-version", help="write a new version everywhere")
    setter.add_argument("version")
    commands.add_parser("check", help="build and validate every release artefact offline")
    args = parser.parse_args()
    if args.command == "version":
        print(project_version())
        return 0
    if args.command == "set-version":
        set_version(args.version)
        return 0
    return check()


if __name__ == "__main__":
    sys.exit(main())
