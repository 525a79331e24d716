"""`ticketing-dev`: bring the local platform's servers up on loopback, report them, take them down."""

import argparse
import json
import os
import sys
from pathlib import Path

from ticketing_dev.ports import PortTaken, ensure_free
from ticketing_dev.process import ServerNotReady
from ticketing_dev.servers import MissingPrerequisite
from ticketing_dev.stack import LocalStack, StackPorts, stop_recorded

DEFAULT_PORTS = StackPorts(redis=16379, mariadb=13306, kafka=19092, kafka_controller=19093)


def _ports(args: argparse.Namespace) -> StackPorts:
    return StackPorts(
        redis=ensure_free(args.redis_port, "Redis"),
        mariadb=ensure_free(args.mariadb_port, "MariaDB"),
        kafka=ensure_free(args.kafka_port, "Kafka"),
        kafka_controller=ensure_free(args.kafka_controller_port, "Kafka's controller"),
    )


def _port_option(parser: argparse.ArgumentParser, name: str, default: int) -> None:
    env = f"TICKETING_{name.upper().replace('-', '_')}_PORT"
    parser.add_argument(
        f"--{name}-port",
        type=int,
        default=int(os.environ.get(env, default)),
        help=f"loopback port (env {env}, default {default})",
    )


def _up(args: argparse.Namespace) -> int:
    if (args.run_dir / "stack.json").exists():
        print(
            f"a stack is already recorded in {args.run_dir}; run 'ticketing-dev down' first",
            file=sys.stderr,
        )
        return 1
    stack = LocalStack(
        args.run_dir, _ports(args), args.kafka_brokers, with_redis_cluster=args.redis_cluster
    )
    stack.start()
    print(f"Redis    {stack.redis.url}")
    if stack.redis_cluster is not None:
        nodes = ", ".join(str(node.port) for node in stack.redis_cluster.nodes)
        print(f"Redis Cluster {stack.redis_cluster.url}  (nodes on {nodes}; the settings use it)")
    print(
        f"MariaDB  {stack.mariadb.url}  (user and password as shown; socket {stack.mariadb.socket})"
    )
    print(f"Kafka    {stack.kafka.bootstrap}  ({args.kafka_brokers} broker(s))")
    print(f"logs     {args.run_dir / 'logs'}")
    env_file = args.run_dir / "stack.env"
    env_file.write_text("".join(f"export {k}={v}\n" for k, v in stack.env().items()))
    print(f"settings {env_file}  (source it to point services at this stack)")
    return 0


def _down(args: argparse.Namespace) -> int:
    stopped = stop_recorded(args.run_dir)
    print(f"stopped {', '.join(stopped)}" if stopped else f"nothing recorded in {args.run_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = args.run_dir / "stack.json"
    if not state.exists():
        print(f"no stack recorded in {args.run_dir}")
        return 1
    print(json.dumps(json.loads(state.read_text()), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketing-dev", description=__doc__)
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path(os.environ.get("TICKETING_RUN_DIR", ".run")),
        help="where the servers keep data and logs (env TICKETING_RUN_DIR)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start Redis, MariaDB and Kafka and wait until they answer")
    for name, port in (
        ("redis", DEFAULT_PORTS.redis),
        ("mariadb", DEFAULT_PORTS.mariadb),
        ("kafka", DEFAULT_PORTS.kafka),
        ("kafka-controller", DEFAULT_PORTS.kafka_controller),
    ):
        _port_option(up, name, port)
    up.add_argument(
        "--kafka-brokers",
        type=int,
        choices=(1, 3),
        default=1,
        help="one broker that is its own controller, or a three-node KRaft cluster whose first "
        "node takes the Kafka ports and the others free ones (topics then get 3 replicas, 2 in sync)",
    )
    up.add_argument(
        "--redis-cluster",
        action="store_true",
        help="also start a Redis Cluster (3 primaries, a replica each) on free ports, and point "
        "the settings at it (TICKETING_REDIS_CLUSTER=true)",
    )
    up.set_defaults(handler=_up)
    commands.add_parser("down", help="stop the servers that 'up' started").set_defaults(
        handler=_down
    )
    commands.add_parser("status", help="show what 'up' started").set_defaults(handler=_status)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.run_dir = args.run_dir.resolve()
    try:
        return int(args.handler(args))
    except (MissingPrerequisite, PortTaken, ServerNotReady) as exc:
        print(f"ticketing-dev: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
