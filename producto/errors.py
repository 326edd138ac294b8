"""Error answers (a page for the browser, JSON for the API) and the headers every answer carries."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producto.api import API
from producto.pages import templates
from producto.schemas import BAD_VALUE

# Nothing the page uses comes from anywhere but this app.
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """Adds the security headers to every response that passes through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (name.lower().encode(), value.encode())
                    for name, value in SECURITY_HEADERS.items()
                    if name.lower().encode() not in present
                ]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith((API, "/health"))


def error_response(request: Request, status: int, message: str) -> Response:
    """The error as a page for a browser's address, as JSON for the API."""
    if _wants_html(request):
        response: Response = templates.TemplateResponse(
            request, "error.html", {"status": status, "message": message}, status_code=status
        )
    else:
        response = JSONResponse({"detail": message}, status_code=status)
    # The 500 answer is made outside every middleware (Starlette's ServerErrorMiddleware), so
    # the headers are set here as well.
    response.headers.update(SECURITY_HEADERS)
    return response


async def bad_value(request: Request, exc: Exception) -> Response:
    """422 naming what each bad value should look like."""
    assert isinstance(exc, RequestValidationError)
    names = [str(err["loc"][-1]) for err in exc.errors() if err.get("loc")]
    message = "; ".join(dict.fromkeys(BAD_VALUE.get(n, f"{n} is not valid") for n in names))
    return error_response(request, 422, message or "invalid request")


async def http_error(request: Request, exc: Exception) -> Response:
    """404 and friends, with their message."""
    assert isinstance(exc, StarletteHTTPException)
    return error_response(request, exc.status_code, str(exc.detail))


async def database_down(request: Request, exc: Exception) -> Response:
    """503 when the database does not answer."""
    return error_response(request, 503, "the product database is not answering; try again later")


async def server_error(request: Request, exc: Exception) -> Response:
    """500 without details, with the same headers as every answer."""
    # Starlette re-raises the exception after this answer, so the server logs the traceback.
    return error_response(request, 500, "something went wrong on our side; it has been logged")


class HeadAsGet:
    """Answers ``HEAD`` as ``GET`` without the body (HTTP requires it of every GET resource)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


def install(app: FastAPI) -> None:
    """Register the error handlers and the security headers on ``app``."""
    app.add_exception_handler(RequestValidationError, bad_value)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(sa.exc.OperationalError, database_down)
    app.add_exception_handler(Exception, server_error)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(HeadAsGet)
