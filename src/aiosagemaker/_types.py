"""Structural types shared across modules: the SDK's serializer and deserializer protocols."""

from __future__ import annotations

from typing import IO, Any, Protocol, runtime_checkable

__all__ = ["Deserializer", "Serializer"]


@runtime_checkable
class Serializer(Protocol):
    """Anything with ``CONTENT_TYPE`` and ``serialize`` (SageMaker SDK serializers included)."""

    @property
    def CONTENT_TYPE(self) -> str: ...

    def serialize(self, data: Any) -> Any:
        """Return ``bytes``, ``str`` or a readable file-like object."""
        ...


@runtime_checkable
class Deserializer(Protocol):
    """Anything with ``ACCEPT`` and ``deserialize`` (SageMaker SDK deserializers included)."""

    @property
    def ACCEPT(self) -> str | tuple[str, ...]: ...

    def deserialize(self, stream: IO[bytes], content_type: str) -> Any:
        """Decode the fetched body; ``stream`` is readable and closable."""
        ...
