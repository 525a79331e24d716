"""The pre-queue's random order, which anyone can recompute: a keyed permutation of the users.

Before opening, the waiting room publishes SHA-256(seed); after opening it publishes the seed.
Each pre-queue user's order key is HMAC-SHA256(seed, user id), and the pre-queue is served in
ascending key order. `python -m ticketing.queue.fairness verify` recomputes every position.
"""

import argparse
import hashlib
import hmac
import secrets
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

RULE = (
    "Users who join before the sale opens are served in ascending order of "
    "HMAC-SHA256(key=seed, message=user id), hex digest, ties broken by user id; "
    "everyone after them in the order they joined. The seed is 32 random bytes published as "
    "hex after opening; its SHA-256 (of the 32 bytes) is published before opening."
)


def new_seed() -> str:
    return secrets.token_bytes(32).hex()


def commitment(seed: str) -> str:
    return hashlib.sha256(bytes.fromhex(seed)).hexdigest()


def order_key(seed: str, user_id: str) -> str:
    return hmac.new(bytes.fromhex(seed), user_id.encode(), hashlib.sha256).hexdigest()


def random_order(seed: str, users: Iterable[str]) -> list[str]:
    """The pre-queue's users in the order they are served."""
    return sorted(set(users), key=lambda user: (order_key(seed, user), user))


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def verify(
    seed: str, published_commitment: str, users: Sequence[str], order: Sequence[str]
) -> list[str]:
    """What is wrong with a published pre-queue order; empty when it is the fair one."""
    problems = []
    if commitment(seed) != published_commitment.lower():
        problems.append("the seed does not match the commitment published before opening")
    expected = random_order(seed, users)
    if order and list(order) != expected:
        for position, (got, want) in enumerate(zip(order, expected, strict=False), start=1):
            if got != want:
                problems.append(f"position {position}: published {got}, recomputed {want}")
        if len(order) != len(expected):
            problems.append(f"published {len(order)} users, recomputed {len(expected)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ticketing.queue.fairness", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="recompute the pre-queue order from the seed")
    check.add_argument("--seed", required=True, help="the seed published after opening (hex)")
    check.add_argument("--commitment", required=True, help="the SHA-256 published before opening")
    check.add_argument(
        "--users", type=Path, required=True, help="file: pre-queue user ids, one a line"
    )
    check.add_argument("--order", type=Path, help="file: the published order, one user id a line")
    args = parser.parse_args(argv)
    try:
        bytes.fromhex(args.seed)
    except ValueError:
        parser.error("--seed must be hex")
    users = _lines(args.users)
    order = _lines(args.order) if args.order else []
    for position, user in enumerate(random_order(args.seed, users), start=1):
        print(f"{position}\t{user}")
    problems = verify(args.seed, args.commitment, users, order)
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    if not problems:
        print("OK: the order is the one the published seed gives", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
