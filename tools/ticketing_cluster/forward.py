"""`kubectl port-forward` to a Service of the cluster, on a free loopback port, for as long as
a `with` block runs."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ticketing_cluster import paths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def port_forward(
    context: str, namespace: str, service: str, port: int, timeout: float = 60
) -> Iterator[int]:
    """Forwards 127.0.0.1:<free port> to the Service's port; yields the local port."""
    local = free_port()
    process = subprocess.Popen(
        [str(paths.binary("kubectl")), "--context", context, "-n", namespace, "port-forward",
         f"service/{service}", f"{local}:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not _accepts(local):
            if process.poll() is not None:
                raise RuntimeError(
                    f"port-forward to {service} ended: {process.stderr.read() if process.stderr else ''}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"port-forward to {service}:{port} did not accept within {timeout} s"
                )
            time.sleep(0.2)
        yield local
    finally:
        process.terminate()
        process.communicate(timeout=10)
