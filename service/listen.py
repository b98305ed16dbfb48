"""The workers' listening sockets: one each, all on the same port (SO_REUSEPORT)."""

from __future__ import annotations

import socket

from service.errors import ConfigurationError


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening socket of this worker's own in a SO_REUSEPORT group: the kernel spreads new
    connections evenly over the workers. (With one shared socket, whichever worker wakes first
    accepts, and keep-alive clients can end up mostly on one worker while the other idles.)"""
    sock = socket.socket(_family(host))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def port_guard(host: str, port: int) -> socket.socket:
    """A socket the launcher keeps bound (not listening) on the workers' port until it exits.
    Raises ConfigurationError if anything else is on the port. The guard itself must share the port
    through SO_REUSEPORT like the workers' sockets, so it would share it with another server's
    too: a plain bind comes first, which any socket on the port refuses (TIME_WAIT does not)."""
    with socket.socket(_family(host)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise ConfigurationError(f"cannot listen on {host}:{port}: {e.strerror}", "stop what uses it or set SENTIMENT_PORT") from None
    guard = socket.socket(_family(host))
    guard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    guard.bind((host, port))
    return guard
