"""ASGI middlewares of ktt's services: :class:`RequestGuard` (what every ktt service mounts) and
:class:`BodySizeLimit` (413 only)."""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)

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


#: Content types accepted as JSON (besides any ``application/<name>+json``).
JSON_TYPES = ("application/json",)
#: Deepest nesting of a request's JSON (ktt's own requests are 2 deep: {"texts": [...]}).
MAX_JSON_DEPTH = 32
#: What a ktt service's ``/predict`` takes, for the refusals' messages.
USAGE = 'send {"text": "..."} or {"texts": ["...", ...]} with Content-Type: application/json'


class RequestGuard:
    """Refuse, with ktt's own ``{"error": ...}`` body and one WARNING log line, what the API cannot parse.

    For POST requests (what every ktt API takes):

    * a ``Content-Type`` that is not JSON (``text/plain``, a form, none): 415;
    * a body over ``max_bytes``: 413 (see :class:`BodySizeLimit`);
    * a body that is not JSON (or not UTF-8), JSON nested deeper than ``max_depth``
      levels, or JSON that is not an object: 400.

    A body that passes is replayed to the application as received, so BentoML and
    pydantic only ever see well-formed, shallow JSON objects (and never log their
    own tracebacks for bad input). Other requests (GET /readyz, /metrics, ...) pass
    through untouched.

    Parameters
    ----------
    app : ASGI application
    max_bytes : int
        Largest accepted body.
    max_depth : int
        Deepest accepted nesting of arrays and objects.
    """

    METHODS = ("POST",)

    def __init__(self, app, max_bytes: int = 1_048_576, max_depth: int = MAX_JSON_DEPTH):
        self.app = app
        self.max_bytes = int(max_bytes)
        self.max_depth = int(max_depth)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in self.METHODS:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1").strip()
        if not is_json_type(content_type):
            await _drain(receive)
            what = f"unsupported Content-Type {content_type!r}" if content_type else "no Content-Type"
            return await self._refuse(scope, send, 415, f"{what}; {USAGE}")
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await self._refuse(scope, send, 400, "invalid Content-Length header")
            if declared > self.max_bytes:
                await _drain(receive)
                return await self._refuse(scope, send, 413, f"request body of {declared} bytes is over the limit of "
                                                            f"{self.max_bytes} bytes")
        messages, chunks, size = [], [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await _drain(receive)
                return await self._refuse(scope, send, 413, f"request body is over the limit of {self.max_bytes} bytes")
            if not message.get("more_body", False):
                break
        problem = self.json_problem(b"".join(chunks))
        if problem:
            return await self._refuse(scope, send, 400, problem)

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)

    def json_problem(self, body: bytes) -> str | None:
        """Why ``body`` is not an acceptable JSON object, or None.

        The body is parsed by the parser BentoML's pydantic models use (jiter,
        through ``pydantic_core.from_json``), so that what passes here also parses
        there; ``NaN`` and ``Infinity``, which are not JSON, are refused.
        """
        if not body.strip():
            return f"empty request body; {USAGE}"
        try:
            value = loads(body)
        except RecursionError:
            return f"JSON nested too deeply (at most {self.max_depth} levels)"
        except ValueError as error:
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if "recursion" in text:
                return f"JSON nested too deeply (at most {self.max_depth} levels)"
            return f"invalid JSON: {text[:200]}"
        depth = json_depth(value, self.max_depth)
        if depth > self.max_depth:
            return f"JSON nested too deeply (at most {self.max_depth} levels)"
        if not isinstance(value, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")
            return f"the body must be a JSON object, got {kind}; {USAGE}"
        return None

    async def _refuse(self, scope, send, status: int, message: str) -> None:
        log.warning("%d %s %s: %s", status, scope.get("method"), scope.get("path"), message)
        await _reply(send, status, message)


def loads(body: bytes):
    """Parse JSON as BentoML will (pydantic's jiter, NaN and Infinity refused); the standard library without pydantic."""
    try:
        from pydantic_core import from_json
    except ImportError:  # pragma: no cover - BentoML depends on pydantic
        def refuse(constant):
            raise ValueError(f"{constant} is not JSON")

        return json.loads(body, parse_constant=refuse)
    return from_json(body, allow_inf_nan=False)


def is_json_type(content_type: str) -> bool:
    """``application/json`` or ``application/<name>+json``, with or without parameters (``; charset=utf-8``)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def json_depth(value, limit: int) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), counted up to ``limit + 1``."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
            stack.extend((child, depth) for child in (node.values() if isinstance(node, dict) else node))
    return deepest
