"""People waiting on the waiting room's WebSocket, held cheaply: one coroutine per connection.

`wait_on_socket` is one person's wait (the buyers use it). Run as a program, it holds tens of
thousands of such connections against a queue service on loopback and reports positions and
admissions: `python -m loadtest.crowd.waiters --queue-url http://127.0.0.1:8002 --event E -n 20000`.
"""

import argparse
import asyncio
import json
import resource
import time
import uuid

from ticketing.common.settings import CommonSettings
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from loadtest.crowd.client import Place, QueueState, SaleApi, ServiceUrls, place_from_message
from loadtest.crowd.identity import Person, minted_token
from loadtest.crowd.recorder import Recorder


async def wait_on_socket(url: str, recorder: Recorder, deadline: float) -> Place | None:
    """Listen until admitted, sold out or closed; None if the socket failed or `deadline`
    (monotonic) passed first."""
    limit = asyncio.timeout(max(deadline - time.monotonic(), 0.01))
    try:
        async with (
            limit,
            connect(url, open_timeout=10, ping_interval=20, max_queue=4) as socket,
        ):
            async for message in socket:
                place = place_from_message(message)
                recorder.saw(place)
                if place.state != QueueState.WAITING:
                    recorder.answer(True)
                    return place
    except (OSError, WebSocketException, ValueError, KeyError) as exc:
        # TimeoutError is an OSError: the run's deadline ending a wait is not a failure, a
        # handshake that timed out before it is.
        if limit.expired():
            return None
        recorder.answer(False)
        recorder.failed(f"waiting socket: {type(exc).__name__}: {exc}")
        return None
    recorder.answer(False)
    recorder.failed("waiting socket: closed by the server before admission")
    return None


def raise_open_file_limit() -> int:
    """Each connection is a file descriptor: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def hold_crowd(
    api: SaleApi, tokens: list[str], per_second: float, seconds: float
) -> Recorder:
    """Open one socket per token at `per_second`, all closed by `seconds` after the start."""
    recorder = Recorder()
    deadline = time.monotonic() + seconds

    async def one(index: int, token: str) -> None:
        await asyncio.sleep(index / per_second)
        recorder.arrived += 1
        place = await wait_on_socket(api.waiting_socket(token), recorder, deadline)
        if place is not None and place.state == QueueState.ADMITTED:
            recorder.admitted()
        recorder.outcome(place.state.value if place is not None else "gave_up_waiting")

    await asyncio.gather(*(one(i, token) for i, token in enumerate(tokens)))
    return recorder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.crowd.waiters", description=__doc__)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--event", required=True)
    parser.add_argument("-n", "--people", type=int, default=1000)
    parser.add_argument("--per-second", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    if not args.queue_url.startswith(("http://127.", "http://localhost")):
        parser.error("load is sent to loopback only: --queue-url must be http://127.x or localhost")
    raise_open_file_limit()
    settings = CommonSettings()
    run_id = uuid.uuid4().hex[:6]
    tokens = [minted_token(settings, Person(run_id, i)) for i in range(args.people)]
    urls = ServiceUrls("", args.queue_url, "", "", "")
    recorder = asyncio.run(
        hold_crowd(SaleApi(urls, args.event), tokens, args.per_second, args.seconds)
    )
    print(
        json.dumps(
            {
                "people": args.people,
                "outcomes": dict(recorder.outcomes),
                "admitted": len(recorder.admissions),
                "positions_seen": len(recorder.positions),
                "errors": recorder.errors,
            }
        )
    )


if __name__ == "__main__":
    main()
