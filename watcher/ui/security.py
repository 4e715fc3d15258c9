"""Who may change things through the status page, and what the browser is allowed to run.

* **Token.** Every state-changing request (a POST) carries the token from ``WATCHER_UI_TOKEN``
  — a form field ``token`` or a header ``X-Watcher-Token`` — compared in constant time. The
  token comes from the environment only, never the config file; without it set, the page is
  read-only and every POST is refused. It never appears in a page, a log line or a repr.
* **CSRF.** A random cookie (``HttpOnly``, ``SameSite=Strict``) per browser, and every form
  carries ``csrf`` = HMAC(server secret, cookie); a POST without the pair, or from another
  origin (``Origin`` header), is refused before anything else is looked at. The server
  secret is random per process: a form outlives a restart only by being loaded again.
* **Headers.** A strict Content-Security-Policy (``default-src 'self'``, no inline script or
  style, no framing, forms post only to this origin), ``nosniff``, no referrer to other sites, no caching.

A refusal is a 403 page that says which check failed; nothing has been changed. Imports
aiohttp and the standard library.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

TOKEN_ENV = "WATCHER_UI_TOKEN"
COOKIE = "watcher_ui"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes Chromium send "Origin: null" on POST
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

#: The cookie set on this response, for the forms of a browser's first page (it has none to send yet).
_NEW_COOKIE: Any = getattr(web, "RequestKey", lambda name, _t: name)("csrf_cookie", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """A state-changing request that did not pass a check; ``reason`` is shown on the 403 page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Guard:
    """The token and CSRF checks of one server; :meth:`middleware` adds the headers and cookie."""

    def __init__(self, token: str | None = None) -> None:
        raw = os.environ.get(TOKEN_ENV, "") if token is None else token
        self._token = raw.encode() if raw else b""
        self._secret = secrets.token_bytes(32)

    def __repr__(self) -> str:
        return f"Guard(token={'set' if self._token else 'unset'})"

    @property
    def writable(self) -> bool:
        return bool(self._token)

    def csrf_for(self, request: web.Request) -> str:
        """The form token of the browser that sent ``request`` (its cookie, or the one set now)."""
        cookie = request.get(_NEW_COOKIE) or request.cookies.get(COOKIE, "")
        return hmac.new(self._secret, cookie.encode(), hashlib.sha256).hexdigest() if cookie else ""

    def check(self, request: web.Request, form: dict[str, str]) -> None:
        """Raise :class:`Refused` unless ``request`` (a POST with ``form``) passes both checks."""
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise Refused("the form was posted from another site (Origin does not match): nothing was changed")
        cookie = request.cookies.get(COOKIE, "")
        sent = form.get("csrf", "")
        want = hmac.new(self._secret, cookie.encode(), hashlib.sha256).hexdigest()
        if not cookie or not sent or not hmac.compare_digest(sent, want):
            raise Refused("the form's CSRF token is missing or stale (reload the page and try again): "
                          "nothing was changed")  # fmt: skip
        if not self._token:
            raise Refused(f"this status page is read-only: start watcher with {TOKEN_ENV} set to allow actions; "
                          "nothing was changed")  # fmt: skip
        given = (form.get("token") or request.headers.get("X-Watcher-Token", "")).encode()
        if not given or not hmac.compare_digest(given, self._token):
            raise Refused(f"a valid token ({TOKEN_ENV}) is needed for this action: nothing was changed")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        new_cookie = None
        if not request.cookies.get(COOKIE):
            new_cookie = secrets.token_urlsafe(32)
            request[_NEW_COOKIE] = new_cookie
        try:
            response = await handler(request)
        except web.HTTPException as e:  # a 404 or 405 from the router: the same headers
            for name, value in HEADERS.items():
                e.headers.setdefault(name, value)
            raise
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if new_cookie is not None:
            response.set_cookie(COOKIE, new_cookie, httponly=True, samesite="Strict", path="/")
        return response
