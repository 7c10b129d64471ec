"""The dashboard's guards: the access token, trusted hosts, cross-site checks, headers.

A dashboard with a token accepts it three ways: an ``Authorization: Bearer`` header (for
Prometheus and scripts), a cookie (for browsers), or once as ``?token=`` in a link, which sets the
cookie and redirects to the same page without the token in its address. Control actions are POSTs
that must carry the page's CSRF token and, when the browser sends an ``Origin`` (or ``Referer``),
come from this dashboard's own origin.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "COOKIE_NAME",
    "USER_SCOPE_KEY",
    "Guard",
    "csrf_token",
    "is_loopback",
    "read_users_file",
    "same_origin",
]

COOKIE_NAME = "batch_orchestra_dashboard"
"""The cookie that carries a browser's proof of the access token."""

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
"""Host names a loopback-only dashboard answers to (guards against DNS rebinding)."""

_SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the dashboard on this machine."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _derive(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def csrf_token(secret: str) -> str:
    """The token every control form carries; derived from the app's secret."""
    return _derive(secret, "csrf")


def _host_of(url: str) -> str | None:
    netloc = urlsplit(url).netloc.lower()
    return netloc or None


def _default_port(host: str) -> str:
    # "example.com:443" and "example.com" name the same origin behind a TLS proxy.
    for suffix in (":80", ":443"):
        if host.endswith(suffix):
            return host[: -len(suffix)]
    return host


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site's page.

    Compares the host (and port) of ``Origin`` (or ``Referer``) with the ``Host`` the request
    was sent to; the scheme is left out so that a dashboard behind a TLS-terminating proxy
    (https outside, http inside) still accepts its own forms.
    """
    own = _default_port(request.headers.get("host", request.url.netloc).lower())
    origin = request.headers.get("origin")
    if origin is not None:
        host = _host_of(origin)
    elif request.headers.get("referer") is not None:
        host = _host_of(request.headers["referer"])
    else:
        return True  # no browser hint: the CSRF token alone decides
    return host is not None and _default_port(host) == own


USER_SCOPE_KEY = "batch_orchestra.user"
"""Where the guard leaves the name of the user whose token a request carried (None: unnamed)."""


class Guard:
    """ASGI middleware: trusted hosts, the access token and security headers on every request.

    ``users`` maps user names to their own tokens; a request carrying one of them is that
    user's (``request.scope[USER_SCOPE_KEY]``), and its actions are recorded under that name.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        secret: str,
        trusted_hosts: Sequence[str] | None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        # (user name or None, token, cookie value) for every token that opens the dashboard.
        self.keys: list[tuple[str | None, str, str]] = []
        if token:
            self.keys.append((None, token, _derive(secret, "cookie")))
        for name, user_token in (users or {}).items():
            self.keys.append((name, user_token, _derive(secret, f"cookie:{name}")))
        self.trusted_hosts = [h.lower() for h in trusted_hosts] if trusted_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        if self.trusted_hosts is not None:
            host = request.headers.get("host", "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in self.trusted_hosts:
                return PlainTextResponse(
                    f"400: host {host!r} is not one this dashboard serves; open it as "
                    "http://127.0.0.1:<port>/",
                    status_code=400,
                )
        if not self.keys:
            return None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            found = self._match(auth[7:].strip(), by_cookie=False)
            if found is not None:
                request.scope[USER_SCOPE_KEY] = found[0]
                return None
        cookie = request.cookies.get(COOKIE_NAME, "")
        found = self._match(cookie, by_cookie=True) if cookie else None
        if found is not None:
            request.scope[USER_SCOPE_KEY] = found[0]
            return None
        given = request.query_params.get("token")
        found = self._match(given, by_cookie=False) if given is not None else None
        if found is not None and request.method == "GET":
            return self._login(request, found[2])
        return PlainTextResponse(
            "401: this dashboard needs its access token. Open it once as <url>?token=TOKEN "
            "(the token given to --token or BATCH_ORCHESTRA_DASHBOARD_TOKEN), or send the header "
            "'Authorization: Bearer TOKEN'.",
            status_code=401,
            headers={"www-authenticate": "Bearer"},
        )

    def _match(self, given: str, *, by_cookie: bool) -> tuple[str | None, str, str] | None:
        """The key whose token (or cookie value) is ``given``, compared in constant time."""
        found = None
        for key in self.keys:
            expected = key[2] if by_cookie else key[1]
            if hmac.compare_digest(given.encode(), expected.encode()):
                found = key
        return found

    def _login(self, request: Request, cookie_value: str) -> Response:
        """Set the cookie and redirect to the same address without the token in it."""
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        url = URL(scope=request.scope).replace(query=query)
        response = RedirectResponse(url.path + (f"?{query}" if query else ""), status_code=303)
        root = request.scope.get("root_path") or "/"
        response.set_cookie(
            COOKIE_NAME,
            cookie_value,
            httponly=True,
            samesite="strict",
            path=root,
            secure=request.url.scheme == "https",
        )
        return response


def read_users_file(path: str) -> dict[str, str]:
    """User names and their tokens from a file of ``NAME TOKEN`` lines (``#`` starts a comment).

    Raises:
        ValueError: a line is not a name and a token, or a name or token repeats; the message
            names the line.
    """
    users: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 2:
                raise ValueError(
                    f"{path}:{number}: expected a user name and a token separated by a space"
                )
            name, token = fields
            if name in users or token in users.values():
                raise ValueError(f"{path}:{number}: user {name!r} or its token is given twice")
            users[name] = token
    if not users:
        raise ValueError(f"{path} names no user (one NAME TOKEN per line)")
    return users
