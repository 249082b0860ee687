"""REST for S3 (being built: see the issue 5 work in progress)."""

from __future__ import annotations

from litestar import Controller


class System3Controller(Controller):
    path = "/api/vsm"
    tags = ["system 3"]
