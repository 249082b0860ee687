"""An outside service that fails in bursts: the environment of the default organisation.

The api agents of deploy/organisation/default.yaml call it. After a calm `lead_s`, it
answers 500 for `burst_s` out of every `period_s`, so S1 feels pain, S5 intervenes with a
policy and the system recovers, on its own and on a schedule anyone can predict.
Standalone: `python scripts/flaky_endpoint.py --port 8007`.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Schedule:
    lead_s: float = 10.0
    burst_s: float = 10.0
    period_s: float = 40.0
    started: float = field(default_factory=time.monotonic)

    def failing(self, now: float | None = None) -> bool:
        elapsed = (time.monotonic() if now is None else now) - self.started - self.lead_s
        return elapsed >= 0 and elapsed % self.period_s < self.burst_s

    def restart(self) -> None:
        """Start the clock again (when the workload begins, so the first burst is on time)."""
        self.started = time.monotonic()


class FlakyEndpoint:
    """Any GET or POST: 200 with a small JSON document, or 500 during a burst."""

    def __init__(self, schedule: Schedule, host: str = "127.0.0.1", port: int = 8007) -> None:
        self.schedule = schedule
        self.calls = 0
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> FlakyEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.calls += 1
                if endpoint.schedule.failing():
                    self._answer(500, {"error": "burst", "message": "failing on schedule"})
                else:
                    self._answer(200, {"status": "ok", "orders": endpoint.calls % 97})

            do_POST = do_GET

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: one line per call would drown the launcher's console."""

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8007)
    parser.add_argument("--lead", type=float, default=10.0)
    parser.add_argument("--burst", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=40.0)
    args = parser.parse_args()
    endpoint = FlakyEndpoint(Schedule(args.lead, args.burst, args.period), port=args.port)
    print(f"failing {args.burst:g}s of every {args.period:g}s at {endpoint.url}", flush=True)
    endpoint.server.serve_forever()


if __name__ == "__main__":
    main()
