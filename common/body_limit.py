"""The request body limit as raw ASGI middleware: a body over the limit gets a 413 problem whatever the client
does. Answering while the client is still sending, then closing, makes its kernel see unread data and reset
the connection, so a client that sends the whole body before it reads gets a reset instead of the 413. This
reads and discards the rest of an oversized body, up to ``drain_limit`` bytes, and only then answers.

A body of unknown length (chunked) is counted as it arrives and treated the same way once it passes the limit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM_MEDIA_TYPE = "application/problem+json"


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, drain_limit: int = 16 * 1024 * 1024) -> None:
        self.app, self.limit, self.drain_limit = app, limit, drain_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.limit:
            await self._refuse(receive, send, already=0)
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        # Unknown length: hold the body back until it is complete or over the limit.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.limit:
                if message.get("more_body", False):
                    await self._refuse(receive, send, already=size)
                else:
                    await _answer_413(send, self.limit)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, receive: Receive, send: Send, already: int) -> None:
        drained = already
        while drained <= self.drain_limit:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nobody to answer
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await _answer_413(send, self.limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer_413(send: Send, limit: int) -> None:
    # The shape common.problems gives every other problem.
    body = json.dumps(
        {
            "status": 413,
            "title": HTTPStatus(413).phrase,
            "detail": f"the request body is over the limit of {limit} bytes",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
