"""Where an endpoint puts results, so that a lost answer can still name its result location.

The one place that works this out: the predictor (for ``SubmissionUncertainError``), its
unsigned-token check (the endpoint's result prefixes) and the batch CLI (which keeps
:attr:`OutputNaming.base` in its state file to resume) all use :class:`OutputNaming`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OutputNaming", "naming_key"]


class OutputNaming:
    """Where an endpoint puts results, learned from its accepted requests.

    A request sent with ``Filename`` (and ``S3OutputPathExtension``) is answered with
    locations that contain ``<extension>/<filename>``; what surrounds it is the endpoint's
    naming, the same for every request. Unknown until one request has been accepted.
    """

    def __init__(self) -> None:
        self._output: tuple[str, str] | None = None
        self._failure: tuple[str, str] | None = None
        self.described = False
        """Whether the endpoint config was read for :meth:`assume` (tried once)."""

    def learn(self, key: str, output_path: str, failure_path: str | None) -> None:
        """Remember the naming from one accepted request sent with ``key`` (ext/filename)."""
        self._output = _split(output_path, key)
        self._failure = None if failure_path is None else _split(failure_path, key)

    @property
    def known(self) -> bool:
        """Whether a request has taught the naming (or :meth:`assume` was given a base)."""
        return self._output is not None

    def assume(self, output_path: str) -> None:
        """Until a request is answered: results go to ``<output_path>/<key>`` (failures unknown)."""
        if self._output is None:
            self._output = (output_path.rstrip("/") + "/", "")

    @property
    def prefixes(self) -> tuple[str | None, str | None]:
        """The learned (output, failure) parts before the key, where known."""
        return (
            None if self._output is None else self._output[0],
            None if self._failure is None else self._failure[0],
        )

    @property
    def base(self) -> str | None:
        """The output part before ``/<key>`` when nothing follows the key (None otherwise)."""
        if self._output is None or self._output[1]:
            return None
        return self._output[0][:-1]  # every learned or assumed part ends with one "/"

    def restore(self, base: str) -> None:
        """Take back a :attr:`base` kept from an earlier run (exactly, unlike :meth:`assume`)."""
        self._output = (base + "/", "")

    def predict(self, key: str) -> tuple[str | None, str | None]:
        """The (output_path, failure_path) of a request sent with ``key``, where known."""
        if self._output is None:
            return None, None
        output_path = key.join(self._output)
        return output_path, None if self._failure is None else key.join(self._failure)


def naming_key(args: dict[str, Any]) -> str | None:
    """``<S3OutputPathExtension>/<Filename>`` of a request, None without a Filename."""
    filename = args.get("Filename")
    if not filename:
        return None
    extension = str(args.get("S3OutputPathExtension") or "").strip("/")
    return f"{extension}/{filename}" if extension else str(filename)


def _split(path: str, key: str) -> tuple[str, str] | None:
    before, found, after = path.rpartition("/" + key)
    if not found or key in before:
        return None
    return before + "/", after
