"""Loopback ports for a local stack: configured ones are checked, missing ones are picked free."""

import random
import socket
from pathlib import Path

# Ports are picked below the kernel's ephemeral range, from here up.
LOWEST_PICKED = 10_000
_handed_out: set[int] = set()


class PortTaken(RuntimeError):
    """A configured port is already in use by another process."""


def free_port() -> int:
    """A port nothing listens on, for a server started next, never handed out twice here.

    Picked below the kernel's ephemeral range: a port in that range can be taken, between the
    pick and the server's bind, as the source port of any outgoing connection on the machine
    (a retry consumer failed to bind its metrics port that way, once, on a loaded machine)."""
    low, high = _outside_ephemeral_range()
    for _ in range(1_000):
        port = random.randrange(low, high)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise PortTaken(f"no free port found from {low} to {high - 1}")


def _outside_ephemeral_range() -> tuple[int, int]:
    """The larger of the ranges below and above the kernel's ephemeral ports (end exclusive)."""
    first, last = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    below, above = (LOWEST_PICKED, first), (last + 1, 65_536)
    return max(below, above, key=lambda span: span[1] - span[0])


def _bindable(port: int) -> bool:
    # On every address: some servers listen on 0.0.0.0.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def ensure_free(port: int, what: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortTaken(
                f"port {port} for {what} is already in use on 127.0.0.1: stop what holds it "
                f"(ss -ltnp 'sport = :{port}') or choose another port"
            ) from exc
    return port
