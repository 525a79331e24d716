"""Loopback ports for a local stack: configured ones are checked, missing ones are picked free."""

import socket


class PortTaken(RuntimeError):
    """A configured port is already in use by another process."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
