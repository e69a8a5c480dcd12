"""``python -m ktt.monitoring``: run the drift monitoring service.

Example::

    python -m ktt.monitoring --config evidently.yaml --reference reference_set.parquet \\
        --host 127.0.0.1 --port 5001

A bad config or reference set stops it at once with one line,
``ktt.monitoring: error: <message>``, and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ktt.errors import KttError


def parse_args(argv=None) -> argparse.Namespace:
    from ktt.monitoring.service import MAX_BODY_BYTES

    parser = argparse.ArgumentParser(
        prog="python -m ktt.monitoring",
        description="Drift monitoring service: POST /iterate (rows from the inference service), "
                    "GET /metrics (Prometheus), GET /drift (last calculation), GET /healthz.")
    parser.add_argument("--config", required=True, help="the model's evidently.yaml")
    parser.add_argument("--reference", default=None,
                        help="reference set (Parquet); default: service.reference_path of the config")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=5001, help="port to listen on (default: %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help="largest accepted /iterate body; larger ones get 413 (default: %(default)s)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser.parse_args(argv)


def fail(message: str) -> None:
    print(f"ktt.monitoring: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None) -> None:
    """Load the config and the reference set, then serve until stopped."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not 1 <= args.port <= 65535:
        fail(f"invalid --port={args.port} (allowed: 1 to 65535)")
    if args.max_body_bytes < 1:
        fail(f"invalid --max-body-bytes={args.max_body_bytes} (allowed: a positive integer)")
    try:
        from ktt.monitoring.config import load_config
        from ktt.monitoring.reference import load_reference

        config = load_config(args.config, reference_path=args.reference)
        reference = load_reference(config) if config.reference_path is not None else None
    except KttError as error:
        fail(str(error))

    import uvicorn

    from ktt.monitoring.service import DriftService, create_app

    service = DriftService(config, reference if config.use_reference else None)
    app = create_app(service, max_body_bytes=args.max_body_bytes)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                                           access_log=args.log_level == "debug", lifespan="on"))
    service.on_fatal = lambda message: setattr(server, "should_exit", True)
    logging.getLogger("ktt.monitoring").info(
        "monitoring %s on %d pooled features and %d classes; reference: %s (%d rows); window %d rows, "
        "every %g s", ", ".join(config.monitors), len(config.features), len(config.classes),
        config.reference_path if config.use_reference else "the first rows received",
        service.monitor.reference_rows if config.use_reference else config.reference_target,
        config.window_size, config.calculation_period_sec)
    server.run()
    if service.fatal_error:
        fail(service.fatal_error)
    if not server.started:
        sys.exit(1)


if __name__ == "__main__":
    main()
