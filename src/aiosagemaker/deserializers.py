"""Deserializers that turn an inference result into Python objects.

They follow the SageMaker Python SDK protocol (``sagemaker.deserializers``): a deserializer has an
``ACCEPT`` attribute (a str or tuple of str) and a ``deserialize(stream, content_type)`` method,
where ``stream`` is a readable, closable file-like object holding the result body. SDK
deserializer objects can therefore be used with aiosagemaker unchanged.

Unlike the SDK, content types are compared on the media type only, ignoring parameters and case,
so ``application/json; charset=utf-8`` is treated as ``application/json``.

numpy and pandas are optional: they are imported only when a deserializer needs them, and a
missing one raises :class:`ImportError` naming the extra to install.

Decoding is CPU work: a result larger than :data:`OFF_LOOP_BYTES` is decoded in a worker
thread (``anyio.to_thread.run_sync``) so that the event loop keeps serving other tasks; a
smaller one on the event loop. A deserializer may therefore run in any thread.
"""

from __future__ import annotations

import abc
import csv
import io
import json
from collections.abc import Callable
from typing import IO, Any

from ._optional import NUMPY_HINT, PANDAS_HINT, import_optional

__all__ = [
    "OFF_LOOP_BYTES",
    "BaseDeserializer",
    "BytesDeserializer",
    "CSVDeserializer",
    "JSONDeserializer",
    "JSONLinesDeserializer",
    "NumpyDeserializer",
    "PandasDeserializer",
    "SimpleBaseDeserializer",
    "StreamDeserializer",
    "StringDeserializer",
]

OFF_LOOP_BYTES = 1024 * 1024
"""Results larger than this many bytes are decoded in a worker thread, not on the event loop."""

_CSV = "text/csv"
_JSON = "application/json"
_NPY = "application/x-npy"
_NPZ = "application/x-npz"


def _media_type(content_type: str | None) -> str:
    """Return the lower-cased media type of a Content-Type value, without its parameters."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _read_all(stream: IO[bytes]) -> bytes:
    """Read the whole stream and close it."""
    try:
        return stream.read()
    finally:
        stream.close()


def _decode(body: bytes, encoding: str, user: str, content_type: str) -> str:
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{user} could not decode the {content_type!r} response body ({len(body)} bytes) "
            f"as {encoding}: {exc}"
        ) from exc


def _unsupported(user: str, content_type: str, expected: tuple[str, ...]) -> ValueError:
    return ValueError(
        f"{user} cannot read content type {content_type!r}; expected one of {', '.join(expected)}"
    )


class BaseDeserializer(abc.ABC):
    """Abstract base class for deserializers.

    Subclasses implement :meth:`deserialize` and the :attr:`ACCEPT` property.
    """

    @abc.abstractmethod
    def deserialize(self, stream: IO[bytes], content_type: str) -> Any:
        """Deserialize a result body.

        Args:
            stream: A readable, closable file-like object holding the body.
            content_type: The MIME type of the body.

        Returns:
            The deserialized object.
        """

    @property
    @abc.abstractmethod
    def ACCEPT(self) -> str | tuple[str, ...]:
        """The MIME type(s) expected from the endpoint."""


class SimpleBaseDeserializer(BaseDeserializer):
    """Base class for deserializers whose accepted MIME types are set at construction.

    Args:
        accept: The MIME type, or tuple of MIME types, expected from the endpoint.

    Raises:
        ValueError: ``accept`` is not a str or a tuple of str.
    """

    def __init__(self, accept: str | tuple[str, ...] = "*/*") -> None:
        if not isinstance(accept, str) and not (
            isinstance(accept, (tuple, list)) and all(isinstance(a, str) for a in accept)
        ):
            raise ValueError(
                "accept must be a str MIME type or a tuple of them, such as 'application/json' "
                f"or ('text/csv', 'application/json'); got {accept!r}"
            )
        self.accept = accept

    @property
    def ACCEPT(self) -> tuple[str, ...]:
        """The MIME types expected from the endpoint, always as a tuple."""
        if isinstance(self.accept, str):
            return (self.accept,)
        return tuple(self.accept)


class BytesDeserializer(SimpleBaseDeserializer):
    """Return the body as ``bytes``.

    Args:
        accept: The MIME type(s) expected from the endpoint.
    """

    def __init__(self, accept: str | tuple[str, ...] = "*/*") -> None:
        super().__init__(accept=accept)

    def deserialize(self, stream: IO[bytes], content_type: str) -> bytes:
        """Read the whole stream, close it, and return its bytes."""
        return _read_all(stream)


class StringDeserializer(SimpleBaseDeserializer):
    """Return the body decoded to ``str``.

    Args:
        encoding: The text encoding of the body.
        accept: The MIME type(s) expected from the endpoint.
    """

    def __init__(self, encoding: str = "UTF-8", accept: str | tuple[str, ...] = _JSON) -> None:
        super().__init__(accept=accept)
        self.encoding = encoding

    def deserialize(self, stream: IO[bytes], content_type: str) -> str:
        """Read, close and decode the stream.

        Raises:
            ValueError: The body is not valid in ``encoding``.
        """
        return _decode(_read_all(stream), self.encoding, type(self).__name__, content_type)


class StreamDeserializer(SimpleBaseDeserializer):
    """Return the stream itself with its content type; the caller must close the stream.

    Args:
        accept: The MIME type(s) expected from the endpoint.
    """

    def __init__(self, accept: str | tuple[str, ...] = "*/*") -> None:
        super().__init__(accept=accept)

    def deserialize(self, stream: IO[bytes], content_type: str) -> tuple[IO[bytes], str]:
        """Return ``(stream, content_type)`` without reading or closing the stream."""
        return stream, content_type


class JSONDeserializer(SimpleBaseDeserializer):
    """Parse a JSON body into Python objects.

    Args:
        accept: The MIME type(s) expected from the endpoint.
    """

    def __init__(self, accept: str | tuple[str, ...] = _JSON) -> None:
        super().__init__(accept=accept)

    def deserialize(self, stream: IO[bytes], content_type: str) -> Any:
        """Read, close and parse the stream as JSON.

        Raises:
            ValueError: The body is not valid JSON (a :class:`json.JSONDecodeError` giving the
                position of the error).
        """
        return _json_loads(_read_all(stream), type(self).__name__, content_type)


def _json_loads(body: bytes, user: str, content_type: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise json.JSONDecodeError(
            f"{user} could not parse the {content_type!r} response body ({len(body)} bytes) "
            f"as JSON: {exc.msg}",
            exc.doc,
            exc.pos,
        ) from exc
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{user} could not decode the {content_type!r} response body ({len(body)} bytes) "
            f"as JSON text (UTF-8, UTF-16 or UTF-32): {exc}"
        ) from exc


class JSONLinesDeserializer(SimpleBaseDeserializer):
    """Parse a JSON Lines body (one JSON value per line) into a list.

    Args:
        accept: The MIME type(s) expected from the endpoint.
    """

    def __init__(self, accept: str | tuple[str, ...] = "application/jsonlines") -> None:
        super().__init__(accept=accept)

    def deserialize(self, stream: IO[bytes], content_type: str) -> list[Any]:
        """Read, close and parse the stream; trailing whitespace is ignored.

        Raises:
            ValueError: The body is not UTF-8, or a line is not valid JSON.
        """
        user = type(self).__name__
        text = _decode(_read_all(stream), "utf-8", user, content_type).rstrip()
        if not text:
            return []
        values = []
        for number, line in enumerate(text.split("\n"), start=1):
            try:
                values.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{user} could not parse line {number} of the {content_type!r} response body "
                    f"as JSON ({exc}); expected one JSON value per line, got {line[:80]!r}"
                ) from exc
        return values


class CSVDeserializer(SimpleBaseDeserializer):
    """Parse a CSV body into a list of rows, each a list of ``str``.

    Use :class:`NumpyDeserializer` or :class:`PandasDeserializer` for typed values.

    Args:
        encoding: The text encoding of the body.
        accept: The MIME type(s) expected from the endpoint.
    """

    def __init__(self, encoding: str = "utf-8", accept: str | tuple[str, ...] = _CSV) -> None:
        super().__init__(accept=accept)
        self.encoding = encoding

    def deserialize(self, stream: IO[bytes], content_type: str) -> list[list[str]]:
        """Read, close and parse the stream as CSV.

        Raises:
            ValueError: The body is not valid in ``encoding``.
        """
        body = _read_all(stream)
        lines = _decode(body, self.encoding, type(self).__name__, content_type).splitlines()
        if len(body) <= OFF_LOOP_BYTES:  # decoded on the event loop: one C call, the fastest
            return list(csv.reader(lines))
        rows: list[list[str]] = []
        for row in csv.reader(lines):  # decoded in a worker thread: a Python loop lets the
            rows.append(row)  # event loop's thread take the GIL between rows
        return rows


class NumpyDeserializer(SimpleBaseDeserializer):
    """Load a CSV, JSON, ``.npy`` or ``.npz`` body into NumPy. Needs numpy.

    Args:
        dtype: The dtype of the resulting array (CSV and JSON bodies; default: inferred).
        accept: The MIME type(s) expected from the endpoint.
        allow_pickle: Whether to load pickled object arrays. Unpickling runs code chosen by
            whoever wrote the result, so only enable this for endpoints you trust.

    Raises:
        ImportError: numpy is not installed.
    """

    _SUPPORTED = (_CSV, _JSON, _NPY, _NPZ)

    def __init__(
        self,
        dtype: Any = None,
        accept: str | tuple[str, ...] = _NPY,
        allow_pickle: bool = False,
    ) -> None:
        super().__init__(accept=accept)
        import_optional("numpy", NUMPY_HINT, type(self).__name__)
        self.dtype = dtype
        self.allow_pickle = allow_pickle

    def deserialize(self, stream: IO[bytes], content_type: str) -> Any:
        """Read, close and load the stream, dispatching on the media type.

        Returns:
            A ``numpy.ndarray``, or a ``numpy.lib.npyio.NpzFile`` for ``application/x-npz``.

        Raises:
            ValueError: The content type is unsupported, the body cannot be parsed, or it holds
                pickled objects and ``allow_pickle`` is false.
        """
        user = type(self).__name__
        np = import_optional("numpy", NUMPY_HINT, user)
        media = _media_type(content_type)
        if media not in self._SUPPORTED:
            stream.close()
            raise _unsupported(user, content_type, self._SUPPORTED)
        body = _read_all(stream)
        if media == _CSV:
            text = _decode(body, "utf-8", user, content_type)
            return self._load(
                lambda: np.genfromtxt(io.StringIO(text), delimiter=",", dtype=self.dtype),
                body,
                content_type,
            )
        if media == _JSON:
            parsed = _json_loads(body, user, content_type)
            return self._load(lambda: np.array(parsed, dtype=self.dtype), body, content_type)
        return self._load(
            lambda: np.load(io.BytesIO(body), allow_pickle=self.allow_pickle), body, content_type
        )

    def _load(self, load: Callable[[], Any], body: bytes, content_type: str) -> Any:
        """Call ``load``, turning NumPy's parse errors into a ValueError with context."""
        try:
            return load()
        except (ValueError, EOFError) as exc:
            hint = ""
            if "allow_pickle" in str(exc):
                hint = "; pass allow_pickle=True only if you trust the endpoint"
            raise ValueError(
                f"{type(self).__name__} could not load the {content_type!r} response body "
                f"({len(body)} bytes): {exc}{hint}"
            ) from exc


class PandasDeserializer(SimpleBaseDeserializer):
    """Load a CSV or JSON body into a pandas DataFrame. Needs pandas.

    CSV is read with ``pandas.read_csv`` (first line is the header); JSON with
    ``pandas.read_json`` (``columns`` orient by default).

    Args:
        accept: The MIME type(s) expected from the endpoint.

    Raises:
        ImportError: pandas is not installed.
    """

    _SUPPORTED = (_CSV, _JSON)

    def __init__(self, accept: str | tuple[str, ...] = (_CSV, _JSON)) -> None:
        super().__init__(accept=accept)
        import_optional("pandas", PANDAS_HINT, type(self).__name__)

    def deserialize(self, stream: IO[bytes], content_type: str) -> Any:
        """Read, close and load the stream into a DataFrame.

        Raises:
            ValueError: The content type is neither CSV nor JSON, or the body cannot be parsed.
        """
        user = type(self).__name__
        pd = import_optional("pandas", PANDAS_HINT, user)
        media = _media_type(content_type)
        if media not in self._SUPPORTED:
            stream.close()
            raise _unsupported(user, content_type, self._SUPPORTED)
        body = _read_all(stream)
        read = pd.read_csv if media == _CSV else pd.read_json
        try:
            return read(io.BytesIO(body))
        except ValueError as exc:
            raise ValueError(
                f"{user} could not load the {content_type!r} response body ({len(body)} bytes) "
                f"with pandas.{read.__name__}: {exc}"
            ) from exc
