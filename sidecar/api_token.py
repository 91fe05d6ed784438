"""The API token, as daprd enforces it: when ``DAPR_API_TOKEN`` is set in the sidecar's environment, every gRPC
call must carry it in the ``dapr-api-token`` metadata (else UNAUTHENTICATED, status message "Unauthorized", as
daprd answers) and every HTTP request in the ``dapr-api-token`` header (else 401 "invalid api token"), except
GET of the health endpoints. Without the variable, nothing is checked (daprd's default too)."""

from __future__ import annotations

import hmac
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import grpc

HEADER = "dapr-api-token"
_OPEN_PATHS = ("/v1.0/healthz", "/v1.0/healthz/outbound")


def configured_token(env: MutableMapping[str, str] | None = None) -> str | None:
    return (os.environ if env is None else env).get("DAPR_API_TOKEN") or None


def _matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """gRPC: refuse a call without the token before any handler runs."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        given = next((value for key, value in details.invocation_metadata or () if key == HEADER), None)
        if _matches(given, self._token):
            return await continuation(details)
        handler = await continuation(details)
        if handler is None:
            return None

        async def refuse(request_or_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "Unauthorized")

        # Same kind of handler as the method's, so the SDK's streaming calls see the status too.
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(refuse)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(refuse)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(refuse)
        return grpc.stream_stream_rpc_method_handler(refuse)


class TokenMiddleware:
    """HTTP (raw ASGI): refuse a request without the token, except GET of the health endpoints."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or (scope["method"] == "GET" and scope["path"].rstrip("/") in _OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        given = next((v.decode() for k, v in scope.get("headers", []) if k.decode().lower() == HEADER), None)
        if _matches(given, self.token):
            await self.app(scope, receive, send)
            return
        body = b"invalid api token\n"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
