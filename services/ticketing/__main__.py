"""The one entry point: `python -m ticketing <service>` runs a service, `migrate` the schema
(`migrate --wait` changes nothing and returns once the schema is migrated).

To add a service, add one line to `APPS` (an HTTP app factory, run by uvicorn) or `WORKERS`
(a function with no arguments, sync or async, that runs until the process is stopped).
"""

import argparse
import asyncio
import importlib
import inspect
import os
from collections.abc import Callable

import uvicorn

from ticketing.common.observability import configure_logging
from ticketing.common.settings import CommonSettings

APPS: dict[str, str] = {
    "user": "ticketing.user.app:create_app",
    "event": "ticketing.event.app:create_app",
    "seat": "ticketing.seat.app:create_app",
    "reservation": "ticketing.reservation.app:create_app",
    "payment": "ticketing.payment.app:create_app",
    "queue": "ticketing.queue.app:create_app",
    "gateway": "ticketing.gateway.app:create_app",
}

WORKERS: dict[str, str] = {
    "retry-consumer": "ticketing.retry.processes:retry_consumer",
    "retry-worker": "ticketing.retry.processes:retry_worker",
    "operator": "ticketing_operator.run:run",
    "queue-admission": "ticketing.queue.admission:run_worker",
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
        uvicorn.run(
            APPS[args.command],
            factory=True,
            host=args.host,
            port=args.port,
            log_config=None,  # keep the JSON logging configured above
            access_log=False,  # the chassis writes one access line per request itself
            proxy_headers=True,
            # The waiting room's sockets carry a status of a few hundred bytes every second:
            # compressing it would give each socket its own zlib context (about 40 KiB, twice
            # the rest of the socket) and every message a deflate, so browsers' offer is declined.
            ws_per_message_deflate=False,
        )
    else:
        _run_worker(_load(WORKERS[args.command]))


def _load(target: str) -> Callable[[], object]:
    module, _, attr = target.partition(":")
    function: Callable[[], object] = getattr(importlib.import_module(module), attr)
    return function


def _run_worker(function: Callable[[], object]) -> None:
    if inspect.iscoroutinefunction(function):
        asyncio.run(function())
    else:
        function()


if __name__ == "__main__":
    main()
