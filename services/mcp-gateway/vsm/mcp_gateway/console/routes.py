"""The console's HTTP face: sign-in, the pages, their live streams and the static assets.

A page is rendered whole on the first visit; its live stream (`/console/events/<page>`,
server-sent events) then sends the page's live part again whenever a topic it shows moved
on the bus, or every `REFRESH_S` for what decays on its own (pain, staleness), but at most
once per `MIN_INTERVAL_S` and only when it changed. Actions are not here: forms post JSON to
the REST API, admitted by the session (see `guard`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import structlog
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, ServerSentEvent, ServerSentEventMessage
from litestar.static_files import create_static_files_router

from vsm.mcp_gateway.access import SESSION_ROUTE
from vsm.mcp_gateway.console import views
from vsm.mcp_gateway.console.guard import Peers
from vsm.mcp_gateway.console.live import Hub, Listening
from vsm.mcp_gateway.console.pages import NAV, PAGES, WHOLE, Answers, PageSpec, Systems
from vsm.mcp_gateway.console.session import (
    COOKIE,
    MAX_TOKEN,
    ScopeOf,
    Session,
    cleared_cookie,
    session_cookie,
    session_of,
)

if TYPE_CHECKING:
    from jinja2 import Environment

log = structlog.get_logger("vsm.console")
HERE = Path(__file__).parent
REFRESH_S = 5.0
MIN_INTERVAL_S = 0.5
KEEP_ALIVE_S = 15.0
RETRY_MS = 2000
MAX_PARAMS = 8
AnyRequest = Request[Any, Any, Any]
MACROS = ("missing_note", "state", "field", "text_field")


def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {
        "percent": views.percent,
        "gauge": views.gauge,
        "recovery": views.recovery,
        "trace_id": views.trace_id,
        "when": lambda t: t.strftime("%H:%M:%S") if t else "—",
        "pretty": lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False),
    }
    env.globals |= {"urlencode": urlencode, "nav": [(n, PAGES[n].title) for n in NAV]}
    macros = env.get_template("macros.html").module  # shared by every page and live part
    env.globals |= {name: getattr(macros, name) for name in MACROS}
    return env


def params_of(request: AnyRequest) -> dict[str, str]:
    """The page's query, bounded: a few short strings (none of the console's own)."""
    listed = list(request.query_params.items())[:MAX_PARAMS]
    return {k: v[:256] for k, v in listed if not k.startswith("_")}


@dataclass
class Rendered:
    stamp: tuple[int, ...]
    at: float
    html: str


@dataclass
class Console:
    """Everything the console's routes share on one replica."""

    answers: Answers
    hub: Hub
    listening: Listening
    peers: Peers
    scope_of: ScopeOf
    session_s: int
    _rendered: dict[tuple[Any, ...], Rendered] = field(default_factory=dict)

    @cached_property
    def env(self) -> Environment:
        """The templates, loaded on the first page asked for (jinja2: about 4 MiB of an idle
        gateway that nobody watches)."""
        return environment()

    def refuse_post(self, request: AnyRequest) -> tuple[int, str, str] | None:
        """Host, Origin and JSON, as for any action."""
        headers = request.headers
        return self.peers.refuse_host(headers.get("host")) or self.peers.refuse_action(
            "POST", headers.get("origin"), headers.get("content-type", "")
        )

    def session(self, request: AnyRequest) -> Session | None:
        return session_of(request.cookies.get(COOKIE), self.scope_of)

    async def context(
        self, name: str, params: dict[str, str], session: Session, *, whole: bool = False
    ) -> dict[str, Any]:
        """What the page's template shows (`whole`: the page itself, not its live part)."""
        spec = PAGES[name]
        systems = Systems(self.answers)
        context = await spec.build(systems, params | {WHOLE: "1"} if whole else params)
        return context | {
            "page": name,
            "title": spec.title,
            "params": params,
            "session": session,
            "missing": systems.missing,
        }

    async def live_part(self, name: str, params: dict[str, str], session: Session) -> str:
        """The page's live part, shared by every viewer of the same page and scope until a
        topic it shows moves or it is `REFRESH_S` old."""
        spec = PAGES[name]
        stamp = self.hub.stamp(spec.topics)
        key = (name, tuple(sorted(params.items())), session.scope)
        known = self._rendered.get(key)
        now = time.monotonic()
        if known is not None and known.stamp == stamp and now - known.at < REFRESH_S * 0.9:
            return known.html
        template = self.env.get_template(spec.template)
        context = template.new_context(await self.context(name, params, session))
        html = "".join(template.blocks["live"](context))
        if len(self._rendered) > 256:
            self._rendered.clear()
        self._rendered[key] = Rendered(stamp, now, html)
        return html

    async def page(self, name: str, request: AnyRequest) -> Response[Any]:
        refusal = self.peers.refuse_host(request.headers.get("host"))
        if refusal is not None:
            return refused(refusal)
        session = self.session(request)
        if session is None:
            query = request.url.query
            target = quote(str(request.url.path) + ("?" + query if query else ""))
            return Redirect(f"/console/sign-in?next={target}", status_code=303)
        params = params_of(request)
        context = await self.context(name, params, session, whole=True)
        html = self.env.get_template(PAGES[name].template).render(context)
        return Response(html, media_type="text/html", headers=NO_STORE)

    async def stream(
        self, name: str, params: dict[str, str], cookie: str | None
    ) -> AsyncIterator[ServerSentEventMessage]:
        spec = PAGES[name]
        await self.listening.join()
        try:
            async for message in self._updates(spec, name, params, cookie):
                yield message
        except Exception as error:  # the browser reconnects
            log.exception("console_stream_failed", page=name, error=repr(error))
        finally:
            self.listening.leave()

    async def _updates(
        self, spec: PageSpec, name: str, params: dict[str, str], cookie: str | None
    ) -> AsyncIterator[ServerSentEventMessage]:
        if True:
            yield ServerSentEventMessage(comment="live", retry=RETRY_MS)
            sent_digest, sent_at = "", time.monotonic()
            heard = self.hub.signal.serial if self.hub.signal else 0
            while True:
                session = session_of(cookie, self.scope_of)
                if session is None:
                    yield ServerSentEventMessage(event="signed-out", data="signed out")
                    return
                stamp = self.hub.stamp(spec.topics)
                html = await self.live_part(name, params, session)
                digest = hashlib.sha256(html.encode()).hexdigest()
                if digest != sent_digest:
                    yield ServerSentEventMessage(event="view", data=html)
                    sent_digest, sent_at = digest, time.monotonic()
                signal = self.hub.signal
                if "algedonic" in spec.topics and signal is not None and signal.serial != heard:
                    heard = signal.serial
                    yield ServerSentEventMessage(event="signal", data=signal.kind)
                if time.monotonic() - sent_at >= KEEP_ALIVE_S:
                    yield ServerSentEventMessage(comment="keep-alive")
                    sent_at = time.monotonic()
                await self.hub.changed(spec.topics, stamp, REFRESH_S)
                await asyncio.sleep(MIN_INTERVAL_S)


NO_STORE = {"cache-control": "no-store"}


def refused(refusal: tuple[int, str, str]) -> Response[Any]:
    status, code, message = refusal
    return Response({"error": code, "message": message}, status_code=status)


def secure(request: AnyRequest) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded == "https"


def safe_next(target: str) -> str:
    """Where to go after signing in: only a console path of this site."""
    return target if target.startswith("/console") and not target.startswith("//") else "/console"


def routes(console: Console) -> list[Any]:
    """The console's route handlers, bound to `console`."""
    return [*session_routes(console), *page_routes(console)]


def session_routes(console: Console) -> list[Any]:
    """Signing in with a token (kept in an HttpOnly cookie) and out."""

    @get("/", include_in_schema=False, opt=SESSION_ROUTE)
    async def home() -> Redirect:
        return Redirect("/console", status_code=303)

    @get("/console/sign-in", include_in_schema=False, opt=SESSION_ROUTE)
    async def sign_in_page(request: AnyRequest) -> Response[Any]:
        refusal = console.peers.refuse_host(request.headers.get("host"))
        if refusal is not None:
            return refused(refusal)
        target = safe_next(request.query_params.get("next", "/console"))
        html = console.env.get_template("sign_in.html").render(next=target, page="sign-in")
        return Response(html, media_type="text/html", headers=NO_STORE)

    @post("/console/sign-in", include_in_schema=False, opt=SESSION_ROUTE, status_code=200)
    async def sign_in(request: AnyRequest) -> Response[Any]:
        refusal = console.refuse_post(request)
        if refusal is not None:
            return refused(refusal)
        try:
            body = json.loads(await request.body())
            token = body.get("token") if isinstance(body, dict) else None
        except ValueError:
            token = None
        if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN:
            return invalid_token("enter the token")
        token = token.strip()
        if console.scope_of(token) is None:
            return invalid_token("this token is not valid here")
        cookie = session_cookie(token, console.session_s, secure(request))
        target = safe_next(str(body.get("next") or "/console"))
        return Response({"next": target}, cookies=[cookie], headers=NO_STORE)

    @post("/console/sign-out", include_in_schema=False, opt=SESSION_ROUTE, status_code=200)
    async def sign_out(request: AnyRequest) -> Response[Any]:
        refusal = console.refuse_post(request)
        if refusal is not None:
            return refused(refusal)
        cookie: Cookie = cleared_cookie(secure(request))
        return Response({"next": "/console/sign-in"}, cookies=[cookie])

    return [home, sign_in_page, sign_in, sign_out]


def page_routes(console: Console) -> list[Any]:
    """The pages, their live streams and their static files."""

    @get("/console", include_in_schema=False, opt=SESSION_ROUTE)
    async def map_page(request: AnyRequest) -> Response[Any]:
        return await console.page("map", request)

    @get("/console/{name:str}", include_in_schema=False, opt=SESSION_ROUTE)
    async def other_page(request: AnyRequest, name: FromPath[str]) -> Response[Any]:
        if name not in PAGES:
            raise NotFoundException(f"no console page {name!r}")
        return await console.page(name, request)

    @get("/console/events/{name:str}", include_in_schema=False, opt=SESSION_ROUTE)
    async def events(request: AnyRequest, name: FromPath[str]) -> Response[Any]:
        """The page's live stream; a session that has ended gets a `signed-out` event."""
        if name not in PAGES:
            raise NotFoundException(f"no console page {name!r}")
        refusal = console.peers.refuse_host(request.headers.get("host"))
        if refusal is not None:
            return refused(refusal)
        stream = console.stream(name, params_of(request), request.cookies.get(COOKIE))
        return ServerSentEvent(stream, headers=NO_STORE | {"x-accel-buffering": "no"})

    static = create_static_files_router(
        "/console/static",
        [HERE / "static"],
        name="console-static",
        include_in_schema=False,
        opt=SESSION_ROUTE,
    )
    return [map_page, other_page, events, static]


def invalid_token(message: str) -> Response[Any]:
    body = {
        "error": "invalid_token",
        "message": message,
        "fields": [{"field": "token", "message": message}],
    }
    return Response(body, status_code=401)
