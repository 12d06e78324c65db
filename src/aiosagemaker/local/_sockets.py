"""Bind listening sockets ourselves, so every bind error is an immediate ``OSError``."""

from __future__ import annotations

import socket

LISTEN_BACKLOG = 512


class BindError(OSError):
    """A server's address cannot be resolved or bound (bad host, port in use, ...)."""


def bind_socket(host: str, port: int, what: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = a free port), ``SO_REUSEADDR`` set.

    Raises:
        BindError: ``host`` does not resolve to a local address, or the port is taken.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise BindError(f"cannot bind {what} to {host}:{port}: {_reason(exc)}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind {what} to {host}:{port}: {_reason(exc)}") from None
    return sock


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
