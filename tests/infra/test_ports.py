"""Ports picked for local servers: free, never handed out twice, and outside the kernel's
ephemeral range, where any outgoing connection could take one before its server binds it."""

import socket
from pathlib import Path

from ticketing_dev.ports import free_port


def test_picked_ports_are_distinct_free_and_never_ephemeral() -> None:
    first, last = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())

    ports = [free_port() for _ in range(300)]

    assert len(set(ports)) == len(ports)
    assert not [port for port in ports if first <= port <= last]
    for port in ports[:20]:
        with socket.socket() as server:
            server.bind(("0.0.0.0", port))
