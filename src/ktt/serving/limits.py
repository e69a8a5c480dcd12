"""An ASGI middleware that answers 413 to request bodies over a size limit."""

from __future__ import annotations

import json

#: How much of a refused body is read and discarded before answering 413.
DRAIN_BYTES = 64 * 1024 * 1024


class BodySizeLimit:
    """Refuse request bodies larger than ``max_bytes`` with ``413 {"error": ...}``.

    A body is judged by its declared ``Content-Length`` or, without one (chunked),
    by reading it up to the limit; a body that fits is replayed to the application.
    The rest of a refused body is read and discarded (up to :data:`DRAIN_BYTES`)
    before answering, so that the client, still sending, sees the 413 rather than
    a reset connection.

    Parameters
    ----------
    app : ASGI application
    max_bytes : int
        Largest accepted body.
    """

    def __init__(self, app, max_bytes: int = 1_048_576):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _reply(send, 400, "invalid Content-Length header")
            if declared > self.max_bytes:
                await _drain(receive)
                return await _reply(send, 413, f"request body of {declared} bytes is over the limit of "
                                               f"{self.max_bytes} bytes")
            return await self.app(scope, receive, send)

        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await _drain(receive)
                return await _reply(send, 413, f"request body is over the limit of {self.max_bytes} bytes")
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


async def _drain(receive) -> None:
    """Read and discard the rest of a request body (at most :data:`DRAIN_BYTES`)."""
    size = 0
    while size < DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _reply(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
