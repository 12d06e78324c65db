"""Who may do what: the models clients may name, and the interfaces the emulator may bind.

The emulator does not check request signatures: whoever can reach its ports can invoke its
endpoints, read and write its buckets and use its control plane. So by default it binds only
loopback, and ``CreateModel`` may name only the models given at start (and the built-ins):
a model reference is code the emulator runs, or a URL it calls.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from ._models import container_base_url, is_container_url
from ._spec import ConfigError, ModelRef

BUILTIN_MODELS = frozenset({"aiosagemaker.local.models:echo", "aiosagemaker.local.models:demo"})
ALLOW_REMOTE_MODELS = (
    "--allow-remote-models (config file: allow_remote_models = true; Python: "
    "LocalEndpoint(..., allow_remote_models=True))"
)
ALLOW_NON_LOOPBACK = (
    "--allow-non-loopback (config file: allow_non_loopback = true; Python: "
    "LocalEndpoint(..., allow_non_loopback=True))"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address, or a name that resolves only to loopback."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
    )


def check_host(host: str, allow_non_loopback: bool) -> bool:
    """Refuse a non-loopback ``host`` unless allowed; return whether it is one.

    Raises:
        ConfigError: ``host`` is not loopback and ``allow_non_loopback`` is false.
    """
    if is_loopback(host):
        return False
    if not allow_non_loopback:
        raise ConfigError(
            f"host {host!r} is not a loopback address; the emulator checks no credentials, so "
            f"anyone who can reach it can use it. To serve other machines anyway, pass "
            f"{ALLOW_NON_LOOPBACK}"
        )
    return True


def non_loopback_warning(host: str) -> str:
    """The warning logged when the emulator binds a non-loopback ``host``."""
    return (
        f"serving on {host}, not loopback: request signatures are not checked, so anyone who "
        "can reach these ports can invoke the endpoints, read and write the buckets and "
        "queues, and use the control plane"
    )


class ModelPolicy:
    """The model references ``CreateModel`` may name (``None``: any, remote models allowed)."""

    def __init__(self, started: Iterable[ModelRef], allow_remote_models: bool) -> None:
        self.allowed: frozenset[str] | None = None
        if not allow_remote_models:
            names = set(BUILTIN_MODELS)
            for reference in started:
                if isinstance(reference, str):
                    names.add(reference)
                    if is_container_url(reference):
                        names.add(container_base_url(reference))
            self.allowed = frozenset(names)

    def check(self, reference: str) -> None:
        """Raise :class:`ConfigError` unless ``reference`` may be run.

        Nothing is imported or called here: the check comes before any import.
        """
        if self.allowed is None or reference in self.allowed:
            return
        if is_container_url(reference):
            try:
                if container_base_url(reference) in self.allowed:
                    return
            except ConfigError:
                pass
        raise ConfigError(
            f"model {reference!r} is not one of the emulator's models "
            f"({', '.join(sorted(self.allowed))}). CreateModel may name only the models the "
            f"emulator was started with; to let clients name any module:function or container "
            f"URL, start it with {ALLOW_REMOTE_MODELS}. That runs arbitrary code for anyone "
            "who can reach the emulator."
        )
