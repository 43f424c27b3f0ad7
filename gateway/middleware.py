"""Pure ASGI middleware: request ids, access logs and request metrics; the request body limit; trusted hosts."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import error_body
from gateway.logs import request_id_from, request_id_var
from gateway.metrics import GatewayMetrics

logger = logging.getLogger("pastiche.gateway")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def send_json_error(
    send: Send, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with the one JSON error shape from middleware (outside FastAPI's exception handlers)."""
    body = json.dumps(error_body(code, message)).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """Raised inside the app's ``receive`` once the body passes the limit."""


class BodyLimitMiddleware:
    """413 before reading a body that is declared, or turns out, larger than ``limit`` bytes.

    A ``Content-Length`` over the limit is refused without reading a byte. A chunked body is
    counted as it arrives; once over the limit the app's reading fails and whatever response it
    would have produced is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        state = {"received": 0, "exceeded": False, "started": False}

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.limit:
                    state["exceeded"] = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["exceeded"]:
                return
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not state["exceeded"]:
                raise
        if state["exceeded"] and not state["started"]:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        # Close the connection: the rest of the oversized body is never read.
        await send_json_error(
            send, 413, "payload_too_large", f"the request body exceeds {self.limit} bytes", [(b"connection", b"close")]
        )


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``host`` (port stripped) matches an entry: exact, or ``*.example.com`` for any subdomain."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return any(
        pattern == "*" or name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:]))
        for pattern in allowed
    )


class TrustedHostMiddleware:
    """400 with the JSON error shape for a ``Host`` header not in ``allowed_hosts`` (Starlette's says plain text)."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not host_allowed(_header(scope, b"host") or "", self.allowed_hosts):
            await send_json_error(send, 400, "invalid_host", "the Host header is not one this gateway serves")
            return
        await self.app(scope, receive, send)


class RequestContextMiddleware:
    """Assigns the request id (echoed as ``X-Request-Id``), logs one JSON access line, counts the request."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, b"x-request-id"))
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            state = scope.get("state", {})
            style = state.get("style", "")
            self.metrics.requests.labels(path, scope["method"], str(status["code"]), style).inc()
            self.metrics.request_latency.labels(path).observe(elapsed)
            logger.info(
                "request",
                extra={
                    "method": scope["method"], "path": scope["path"], "route": path, "status": status["code"],
                    "duration_ms": round(elapsed * 1000, 2), "tenant": state.get("tenant", ""), "style": style,
                    "cache": state.get("cache", ""),
                },
            )
            request_id_var.reset(token)
