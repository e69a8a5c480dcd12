"""The monitoring service: an ASGI app (Starlette) and its calculating thread.

Endpoints:

``POST /iterate``
    ``{"data": rows}`` from the inference service; 200 ``{"accepted": n}``, 400
    ``{"error": ...}`` for a bad body (counted in ``ktt_drift_requests_rejected_total``),
    413 for a body over ``max_body_bytes``. It only parses and stores rows.
``GET /metrics``
    Prometheus metrics (see :mod:`ktt.monitoring.metrics`).
``GET /drift``
    The last calculation as JSON (``null`` before the first).
``GET /healthz``
    200 with the monitor's state; 503 if the drift engine failed to load.

Drift is computed in one background thread (:class:`DriftService`): it imports
Evidently at start, then every ``calculation_period_sec`` compares the window
with the reference when there is something new to compare.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ktt.monitoring.drift import DriftEngine, DriftResult
from ktt.monitoring.metrics import DriftMetrics
from ktt.monitoring.monitor import DriftMonitor
from ktt.monitoring.rows import RowError, parse_rows

log = logging.getLogger("ktt.monitoring")

#: Default limit of a request body: a batch of 64 rows of 1,704 scores is about 2 MB of JSON.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: How much of a refused body is read and discarded before answering 413.
DRAIN_BYTES = 64 * 1024 * 1024


class DriftService:
    """Monitor, drift engine, metrics and the thread that ties them together.

    Parameters
    ----------
    config : ktt.monitoring.config.MonitorConfig
    reference : Batch, optional
        The reference set (required with ``use_reference``).
    engine : DriftEngine, optional
        Default: one for ``config``.
    """

    def __init__(self, config, reference=None, engine: DriftEngine | None = None):
        self.config = config
        self.monitor = DriftMonitor(config, reference)
        self.engine = engine or DriftEngine(config)
        self.metrics = DriftMetrics(config.monitors, config.window_size)
        self.metrics.set_sizes(self.monitor.window_rows, self.monitor.reference_rows)
        self.last_result: DriftResult | None = None
        self.fatal_error: str | None = None
        self.on_fatal = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, batch) -> None:
        """Take a parsed batch of rows."""
        self.monitor.add(batch)
        self.metrics.rows_received.inc(len(batch))
        self.metrics.set_sizes(self.monitor.window_rows, self.monitor.reference_rows)

    def calculate(self) -> DriftResult | None:
        """Compare window and reference now if a calculation is due (see :meth:`DriftMonitor.take_snapshot`).

        Returns
        -------
        DriftResult or None
            None if nothing was due or the calculation failed (logged and counted).
        """
        snapshot = self.monitor.take_snapshot()
        self.metrics.set_sizes(self.monitor.window_rows, self.monitor.reference_rows)
        if snapshot is None:
            return None
        try:
            result = self.engine.compute(snapshot.reference, snapshot.current, snapshot.rows_received)
        except Exception:
            self.metrics.calculation_errors.inc()
            log.exception("drift calculation failed")
            return None
        self.metrics.publish(result)
        self.last_result = result
        log.info(describe(result))
        return result

    # ---------------------------------------------------------------- thread
    def start(self) -> None:
        """Start the calculating thread (loads Evidently first)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ktt-drift", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the calculating thread (a calculation in progress finishes first, up to ``timeout_s``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        try:
            self.engine.load()
        except Exception as error:
            self.fatal_error = str(error)
            log.error("ktt.monitoring: error: %s", error)
            if self.on_fatal is not None:
                self.on_fatal(self.fatal_error)
            return
        self.metrics.engine_ready.set(1)
        period = self.config.calculation_period_sec
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.calculate()
            except Exception:  # never let the thread die
                log.exception("drift calculation failed")
            if self._stop.wait(max(0.0, started + period - time.monotonic())):
                break

    def state(self) -> dict:
        """The monitor's state, for ``/healthz``."""
        return {
            "engine": "failed" if self.fatal_error else ("ready" if self.engine.ready else "loading"),
            "status": self.monitor.status,
            "monitors": list(self.config.monitors),
            "reference_rows": self.monitor.reference_rows,
            "reference_source": self.monitor.reference_source,
            "window_rows": self.monitor.window_rows,
            "window_size": self.config.window_size,
            "rows_received": self.monitor.rows_received,
            "last_calculation": None if self.last_result is None else self.last_result.calculated_at,
        }


def describe(result: DriftResult) -> str:
    """One log line for a calculation."""
    parts = []
    if result.data_drift is not None:
        d = result.data_drift
        parts.append(f"data drift share {d.share:.2f} ({d.drifted_features}/{len(d.features)} features), "
                     f"dataset drift: {'yes' if d.dataset_drift else 'no'}")
    if result.prediction_drift is not None:
        p = result.prediction_drift
        parts.append(f"prediction {p.stattest} {p.score:.3g}: {'drift' if p.drifted else 'no drift'}")
    return (f"{'; '.join(parts)} ({result.current_rows} window rows vs {result.reference_rows} reference rows, "
            f"{result.duration_s:.1f} s)")


def create_app(service: DriftService, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The ASGI app of a :class:`DriftService`; its lifespan starts and stops the calculating thread.

    Parameters
    ----------
    service : DriftService
    max_body_bytes : int
        Largest accepted ``/iterate`` body; larger ones get 413.
    """

    async def iterate(request: Request) -> Response:
        try:
            body = await read_body(request, max_body_bytes)
            batch = await run_in_threadpool(parse_rows, body, len(service.config.features), service.config.classes)
        except BodyTooLarge as error:
            service.metrics.rejected("size", 0)
            return JSONResponse({"error": str(error)}, status_code=413, headers={"connection": "close"})
        except RowError as error:
            service.metrics.rejected(error.reason, error.n_rows)
            return JSONResponse({"error": str(error)}, status_code=400)
        service.add(batch)
        return JSONResponse({"accepted": len(batch)})

    async def metrics(request: Request) -> Response:
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def drift(request: Request) -> Response:
        return JSONResponse(None if service.last_result is None else service.last_result.to_dict())

    async def healthz(request: Request) -> Response:
        state = service.state()
        if service.fatal_error:
            return JSONResponse({**state, "error": service.fatal_error}, status_code=503)
        return JSONResponse(state)

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = Starlette(routes=[
        Route("/iterate", iterate, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/drift", drift, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.service = service
    return app


class BodyTooLarge(Exception):
    """A request body over the limit (HTTP 413)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or :class:`BodyTooLarge` once it passes ``limit`` bytes.

    A body declared too large (``Content-Length``) is refused before it is read; the
    rest of a refused body is read and discarded (up to :data:`DRAIN_BYTES`) so that
    the client, still sending, sees the 413 rather than a reset connection.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RowError("format", "invalid Content-Length header") from None
        if size > limit:
            await _drain(request)
            raise BodyTooLarge(f"request body of {size} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    stream = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            await _drain(request, stream, size)
            raise BodyTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(request: Request, stream=None, size: int = 0) -> None:
    stream = stream or request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > DRAIN_BYTES:
            return
