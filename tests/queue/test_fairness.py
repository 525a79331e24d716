"""The pre-queue's random order: committed before opening, revealed after, recomputable by anyone."""

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from ticketing.queue import fairness
from ticketing.queue.admission import AdmissionWorker
from ticketing.queue.store import PlaceState, SaleQueue

from .factories import publish_sale


def run_verify(
    seed: str, commitment: str, users: Path, order: Path
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ticketing.queue.fairness", "verify", "--seed", seed]
    command += ["--commitment", commitment, "--users", str(users), "--order", str(order)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


async def test_pre_queue_is_served_in_the_committed_random_order(
    queue: SaleQueue, worker: AdmissionWorker, redis_client: aioredis.Redis, tmp_path: Path
) -> None:
    opens = datetime.now(UTC) + timedelta(seconds=1.5)
    sale = await publish_sale(
        redis_client, queue, opens_at=opens, closes_at=opens + timedelta(hours=1), tps=1
    )
    early = [f"early-{n:02d}" for n in range(25)]
    for user in early:
        assert (await queue.join(user, sale)).state is PlaceState.PREQUEUE
    before = await queue.fairness_record()
    assert before.seed is None, "the seed stays secret until opening"

    await asyncio.sleep(max(0.0, opens.timestamp() - datetime.now(UTC).timestamp()) + 0.1)
    late = await queue.join("late-comer", sale)
    await worker.tick(queue.event_id)
    after = await queue.fairness_record()

    assert after.seed is not None
    assert after.commitment == before.commitment == fairness.commitment(after.seed)
    tickets = {user: (await queue.join(user, sale)).ticket for user in early}
    served = sorted(early, key=lambda user: tickets[user] or 0)
    assert served == fairness.random_order(after.seed, early) == list(after.order)
    assert served != sorted(early), "25 users in arrival order by chance: 1 in 25!"
    assert late.ticket is not None and all(late.ticket > (t or 0) for t in tickets.values())

    users_file, order_file = tmp_path / "users.txt", tmp_path / "order.txt"
    users_file.write_text("\n".join(sorted(early)))
    order_file.write_text("\n".join(after.order))
    verified = run_verify(after.seed, after.commitment, users_file, order_file)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.splitlines()[0] == f"1\t{served[0]}"

    order_file.write_text("\n".join([served[1], served[0], *served[2:]]))
    tampered = run_verify(after.seed, after.commitment, users_file, order_file)
    assert tampered.returncode == 1
    assert "position 1" in tampered.stderr


def test_verify_refuses_a_seed_that_is_not_the_committed_one() -> None:
    seed, other = fairness.new_seed(), fairness.new_seed()
    problems = fairness.verify(other, fairness.commitment(seed), ["a", "b"], [])
    assert problems == ["the seed does not match the commitment published before opening"]
