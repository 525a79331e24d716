"""The one entry point: `python -m ticketing <service>` runs a service, `migrate` the schema
(`migrate --wait` changes nothing and returns once the schema is migrated).

To add a service, add a loader to `APPS` (it returns the HTTP app, run by uvicorn) or `WORKERS`
(it returns a function with no arguments, sync or async, that runs until the process is stopped).
Each loader imports its service when called, so a process imports only the service it runs,
and the imports stay plain statements that import-linter follows.
"""

import argparse
import asyncio
import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from ticketing.common.observability import configure_logging
from ticketing.common.settings import CommonSettings

if TYPE_CHECKING:
    from starlette.applications import Starlette


def _user() -> "Starlette":
    from ticketing.user.app import create_app

    return create_app()


def _event() -> "Starlette":
    from ticketing.event.app import create_app

    return create_app()


def _seat() -> "Starlette":
    from ticketing.seat.app import create_app

    return create_app()


def _reservation() -> "Starlette":
    from ticketing.reservation.app import create_app

    return create_app()


def _payment() -> "Starlette":
    from ticketing.payment.app import create_app

    return create_app()


def _queue() -> "Starlette":
    from ticketing.queue.app import create_app

    return create_app()


def _gateway() -> "Starlette":
    from ticketing.gateway.app import create_app

    return create_app()


def _retry_consumer() -> Callable[[], object]:
    from ticketing.retry.processes import retry_consumer

    return retry_consumer


def _retry_worker() -> Callable[[], object]:
    from ticketing.retry.processes import retry_worker

    return retry_worker


def _operator() -> Callable[[], object]:
    from ticketing_operator.run import run

    return run


def _queue_admission() -> Callable[[], object]:
    from ticketing.queue.admission import run_worker

    return run_worker


APPS: dict[str, Callable[[], "Starlette"]] = {
    "user": _user,
    "event": _event,
    "seat": _seat,
    "reservation": _reservation,
    "payment": _payment,
    "queue": _queue,
    "gateway": _gateway,
}

WORKERS: dict[str, Callable[[], Callable[[], object]]] = {
    "retry-consumer": _retry_consumer,
    "retry-worker": _retry_worker,
    "operator": _operator,
    "queue-admission": _queue_admission,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ticketing")
    parser.add_argument("command", choices=[*APPS, *WORKERS, "migrate"])
    parser.add_argument(
        "--wait",
        action="store_true",
        help="with migrate: change nothing, wait until the database holds every migration",
    )
    parser.add_argument("--host", default=os.environ.get("TICKETING_HTTP_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("TICKETING_HTTP_PORT", "8000"))
    )
    args = parser.parse_args(argv)
    settings = CommonSettings()
    configure_logging(args.command, settings.log_level)
    if args.command == "migrate" and args.wait:
        from ticketing.migrations.schema import wait_until_migrated

        asyncio.run(wait_until_migrated(settings.database_url))
    elif args.command == "migrate":
        from ticketing.migrations.run import upgrade

        upgrade(settings.database_url)
    elif args.command in APPS:
        serve(APPS[args.command], args.host, args.port)
    else:
        _run_worker(WORKERS[args.command]())


# How uvicorn serves every HTTP app (tests serve apps in-process with the same).
SERVER_OPTIONS: dict[str, object] = {
    "log_config": None,  # keep the JSON logging configured in main
    "access_log": False,  # the chassis writes one access line per request itself
    "proxy_headers": True,
    # The waiting room's sockets carry a status of a few hundred bytes every second:
    # compressing it would give each socket its own zlib context (about 40 KiB, twice
    # the rest of the socket) and every message a deflate, so browsers' offer is declined.
    "ws_per_message_deflate": False,
    # wsproto rather than uvicorn's default (websockets' sans-I/O protocol): an open socket
    # holds about 10 KiB less for the same CPU a message (loadtest.bench_sockets).
    "ws": "wsproto",
}


def serve(app_factory: Callable[[], "Starlette"], host: str, port: int) -> None:
    """Serve an HTTP app as every service is served (the join benchmark's bare endpoint too)."""
    uvicorn.run(app_factory, factory=True, host=host, port=port, **SERVER_OPTIONS)  # type: ignore[arg-type]


def _run_worker(function: Callable[[], object]) -> None:
    if inspect.iscoroutinefunction(function):
        asyncio.run(function())
    else:
        function()


if __name__ == "__main__":
    main()
