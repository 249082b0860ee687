"""`vsm watch` in a pseudo-terminal: it redraws in place and its figures follow the system."""

from __future__ import annotations

import io
import json
import os
import re
import time

import httpx
import pexpect
import pytest

from tests.support.cli import VSM, vsm
from tests.support.tokens import OPERATE_TOKEN, bearer

pytestmark = pytest.mark.integration

PAIN = r"pain (\d\.\d\d)"
UPDATED = r"updated (\d\d:\d\d:\d\d)"
CURSOR_UP = "\x1b[1A"


def next_pain(child: pexpect.spawn, until: float) -> float:
    child.expect(PAIN, timeout=max(1.0, until - time.monotonic()))
    return float(child.match.group(1))


def test_watch_shows_pain_rising_after_a_signal(url: str) -> None:
    env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm-256color", "VSM_TOKEN": OPERATE_TOKEN}
    child = pexpect.spawn(
        VSM,
        ["--url", url, "watch", "--interval", "0.5"],
        env=env,
        dimensions=(60, 140),
        encoding="utf-8",
        codec_errors="replace",  # Ctrl-C flushes the terminal's output, maybe mid-character
    )
    child.logfile_read = screen = io.StringIO()
    try:
        deadline = time.monotonic() + 60
        before = next_pain(child, deadline)
        while before >= 0.4:  # an earlier test's pain is still fading
            before = next_pain(child, deadline)
        child.expect(UPDATED)
        first_update = child.match.group(1)

        sent = httpx.post(
            f"{url}/api/vsm/algedonic/pain",
            json={"intensity": 1.0, "reason": "watch_test"},
            headers=bearer(),
            timeout=30,
        )
        assert sent.status_code == 202, sent.text
        deadline = time.monotonic() + 30
        after = next_pain(child, deadline)
        while after < 0.75:  # 1.0 when sent, halving every 15 s
            after = next_pain(child, deadline)
        assert after > before
        child.expect(UPDATED)
        while child.match.group(1) == first_update:  # the clock in the footer moves on too
            child.expect(UPDATED, timeout=10)
        assert CURSOR_UP in screen.getvalue()  # frames are redrawn in place, not appended

        child.sendintr()
        child.expect(pexpect.EOF, timeout=20)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)


def test_watch_once_prints_one_frame_or_one_json_line(url: str) -> None:
    once = vsm("watch", "--once", url=url)
    assert once.returncode == 0, once.stderr
    assert re.search(r"root (up|degraded|down)\s+viability", once.stdout)
    assert re.search(r"agents: \d+ running", once.stdout)
    assert CURSOR_UP not in once.stdout

    line = vsm("watch", "--once", "--json", url=url)
    [round_] = line.stdout.splitlines()
    assert set(json.loads(round_)) == {"at", "status", "system5", "agents"}
