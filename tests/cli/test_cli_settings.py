"""Where the CLI finds the gateway and its token; no broker: a loopback gateway records calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import vsm
from tests.support.loopback import Handler, LoopbackFake
from vsm.cli.errors import UsageProblem
from vsm.cli.settings import DEFAULT_URL, config_path, resolve

STATUS = {"vsm_id": "root", "state": "up", "components": [], "viability": None}
SYSTEM5 = {
    "vsm_id": "root",
    "viability": {"score": None, "coverage": 0, "terms": []},
    "algedonic": {
        "vsm_id": "root",
        "pain": 0.25,
        "pleasure": 0,
        "signals": 1,
        "episode_open": False,
    },
    "interventions": [],
    "policies": {},
}


class Gateway(LoopbackFake):
    """Answers status and S5's state; remembers each request's path and Authorization."""

    label = "gateway"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str | None]] = []

    def _handle(self, handler: Handler) -> None:
        path = handler.path.split("?", 1)[0]
        self.seen.append((path, handler.headers.get("Authorization")))
        body: Any = {"/api/vsm/status": STATUS, "/api/vsm/system/5": SYSTEM5}.get(path)
        data = json.dumps(body or {"status_code": 404, "detail": "Not Found"}).encode()
        handler.send_response(200 if body else 404)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def gateway() -> Any:
    with Gateway() as fake:
        yield fake


def config(tmp_path: Path, text: str) -> dict[str, str]:
    (tmp_path / "vsm").mkdir(exist_ok=True)
    (tmp_path / "vsm" / "config.toml").write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path)}


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('url = "http://file:1/"\ntoken = "from-file"\n')
    assert resolve("http://flag:1", "t", path).url == "http://flag:1"
    assert resolve(None, None, path).url == "http://file:1"
    assert resolve(None, None, path).token == "from-file"
    assert resolve(None, None, tmp_path / "absent.toml").url == DEFAULT_URL
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/vsm/config.toml")


def test_make_runs_token_comes_last_and_only_for_a_gateway_on_this_machine(
    tmp_path: Path,
) -> None:
    local = tmp_path / ".run" / "token"
    local.parent.mkdir()
    local.write_text("made-by-make-run-1234\n")
    absent = tmp_path / "absent.toml"
    for url in ("http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:8000", None):
        assert resolve(url, None, absent, local).token == "made-by-make-run-1234"
    assert resolve("https://vsm.example.org", None, absent, local).token is None
    assert resolve(None, "flag", absent, local).token == "flag"
    path = tmp_path / "config.toml"
    path.write_text('token = "from-file"\n')
    assert resolve(None, None, path, local).token == "from-file"
    assert resolve(None, None, absent, tmp_path / "none").token is None


def test_a_wrong_config_file_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('gateway = "http://x"\n')
    with pytest.raises(UsageProblem, match="unknown setting 'gateway'"):
        resolve(None, None, path)
    path.write_text("url = \n")
    with pytest.raises(UsageProblem, match=str(path)):
        resolve(None, None, path)


def test_the_token_is_sent_as_a_bearer_token(gateway: Gateway, tmp_path: Path) -> None:
    shown = vsm("--token", "s3cret", "status", "--json", url=gateway.url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["system5"]["algedonic"]["pain"] == 0.25
    assert gateway.seen == [
        ("/api/vsm/status", "Bearer s3cret"),
        ("/api/vsm/system/5", "Bearer s3cret"),
    ]

    gateway.seen.clear()
    env = config(tmp_path, f'url = "{gateway.url}"\ntoken = "from-file"\n')
    assert vsm("status", env=env).returncode == 0
    assert {auth for _, auth in gateway.seen} == {"Bearer from-file"}

    gateway.seen.clear()
    assert vsm("status", env={**env, "VSM_TOKEN": "from-env"}).returncode == 0
    assert {auth for _, auth in gateway.seen} == {"Bearer from-env"}


def test_a_missing_route_is_a_refusal_in_one_line(gateway: Gateway) -> None:
    refused = vsm("trace", "abc", url=gateway.url)
    assert refused.returncode == 1
    assert refused.stderr == "vsm: GET /api/vsm/trace/abc: 404 not_found: Not Found\n"
