"""Serializers that turn request data into an endpoint payload.

They follow the SageMaker Python SDK protocol (``sagemaker.serializers``): a serializer has a
``CONTENT_TYPE`` string and a ``serialize(data)`` method returning ``bytes``, ``str`` or a readable
file-like object. SDK serializer objects can therefore be used with aiosagemaker unchanged.

numpy, pandas and scipy are optional: they are imported only when a serializer needs them, and a
missing one raises :class:`ImportError` naming the extra to install.
"""

from __future__ import annotations

import abc
import csv
import io
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

from ._optional import NUMPY_HINT, SCIPY_HINT, import_optional

__all__ = [
    "BaseSerializer",
    "CSVSerializer",
    "DataSerializer",
    "IdentitySerializer",
    "JSONLinesSerializer",
    "JSONSerializer",
    "LibSVMSerializer",
    "NumpySerializer",
    "SimpleBaseSerializer",
    "SparseMatrixSerializer",
    "StringSerializer",
]


def _is_instance_of(data: object, module: str, attr: str) -> bool:
    """Return whether ``data`` is a ``module.attr`` instance, without importing ``module``.

    An object of that type cannot exist unless its module has already been imported, so looking
    the module up in ``sys.modules`` is enough and keeps plain dicts, lists and strs import-free.
    """
    cls = getattr(sys.modules.get(module), attr, None)
    return isinstance(cls, type) and isinstance(data, cls)


def _is_ndarray(data: object) -> bool:
    return _is_instance_of(data, "numpy", "ndarray")


def _has_read(data: object) -> bool:
    return callable(getattr(data, "read", None))


def _read(data: Any, user: str) -> str | bytes:
    """Read a whole file-like object, checking that it produced ``str`` or ``bytes``."""
    content = data.read()
    if not isinstance(content, (str, bytes)):
        raise ValueError(
            f"{user} read {type(content).__name__} from {type(data).__name__}.read(); "
            "expected str or bytes"
        )
    return content


def _json_default(obj: Any) -> Any:
    """``json.dumps`` fallback that converts NumPy arrays and scalars to Python objects."""
    if _is_ndarray(obj) or _is_instance_of(obj, "numpy", "generic"):
        return obj.tolist()
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class BaseSerializer(abc.ABC):
    """Abstract base class for serializers.

    Subclasses implement :meth:`serialize` and the :attr:`CONTENT_TYPE` property.
    """

    @abc.abstractmethod
    def serialize(self, data: Any) -> Any:
        """Serialize ``data`` into the media type named by :attr:`CONTENT_TYPE`.

        Args:
            data: The data to serialize.

        Returns:
            The request body: ``bytes``, ``str`` or a readable file-like object.
        """

    @property
    @abc.abstractmethod
    def CONTENT_TYPE(self) -> str:
        """The MIME type sent as the request's ``Content-Type``."""


class SimpleBaseSerializer(BaseSerializer):
    """Base class for serializers whose content type is set at construction.

    Every serializer in this module takes a ``content_type`` argument, with its own default.

    Args:
        content_type: The MIME type of the serialized data.

    Raises:
        ValueError: ``content_type`` is not a ``str``.
    """

    def __init__(self, content_type: str = "application/json") -> None:
        if not isinstance(content_type, str):
            raise ValueError(
                "content_type must be a str MIME type such as 'application/json' or "
                f"'text/csv'; got {content_type!r} ({type(content_type).__name__})"
            )
        self.content_type = content_type

    @property
    def CONTENT_TYPE(self) -> str:
        """The MIME type sent as the request's ``Content-Type``."""
        return self.content_type


class IdentitySerializer(SimpleBaseSerializer):
    """Send the data unchanged, for example raw bytes read from an image file."""

    def __init__(self, content_type: str = "application/octet-stream") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> Any:
        """Return ``data`` unchanged."""
        return data


class JSONSerializer(SimpleBaseSerializer):
    """Serialize data to a JSON string.

    NumPy arrays and scalars are converted to lists and Python numbers, also inside dicts and
    lists. File-like objects are read and sent as they are.
    """

    def serialize(self, data: Any) -> str | bytes:
        """Serialize ``data`` to a JSON string.

        Args:
            data: A JSON-serializable object, a NumPy array, a dict of NumPy arrays, or a
                file-like object holding JSON (read and sent as is).
        """
        if _has_read(data) and not isinstance(data, dict):
            return _read(data, type(self).__name__)
        return json.dumps(data, default=_json_default)


class CSVSerializer(SimpleBaseSerializer):
    """Serialize data to CSV text."""

    def __init__(self, content_type: str = "text/csv") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> str | bytes:
        """Serialize ``data`` to CSV text.

        Args:
            data: A str (sent as is), a file-like object, a pandas DataFrame (written without
                header or index), a list or NumPy array (one row), or a list of rows / 2-D
                array (rows joined with newlines).

        Raises:
            ValueError: ``data`` or one of its rows is empty, or has an unsupported type.
        """
        if _has_read(data):
            return _read(data, type(self).__name__)
        if _is_instance_of(data, "pandas", "DataFrame"):
            text: str = data.to_csv(header=False, index=False)
            return text
        if (
            _is_sequence_like(data)
            and hasattr(data, "__setitem__")
            and len(data) > 0
            and _is_sequence_like(data[0])
        ):
            return "\n".join(self._serialize_row(row) for row in data)
        return self._serialize_row(data)

    def _serialize_row(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        received = type(data).__name__
        if _is_ndarray(data):
            data = data.flatten().tolist()
        if hasattr(data, "__len__"):
            if len(data) == 0:
                raise ValueError(
                    f"{type(self).__name__} cannot serialize an empty array (got an empty "
                    f"{received}); expected at least one value per row"
                )
            buffer = io.StringIO()
            csv.writer(buffer, delimiter=",").writerow(data)
            return buffer.getvalue().rstrip("\r\n")
        raise ValueError(
            f"{type(self).__name__} cannot serialize {type(data).__name__}; expected a str, "
            "file-like object, pandas DataFrame, list or NumPy array"
        )


def _is_sequence_like(data: object) -> bool:
    return hasattr(data, "__iter__") and hasattr(data, "__getitem__")


class JSONLinesSerializer(SimpleBaseSerializer):
    """Serialize data to JSON Lines text (one JSON value per line)."""

    def __init__(self, content_type: str = "application/jsonlines") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> str | bytes:
        """Serialize ``data`` to JSON Lines text.

        Args:
            data: A str (sent as is), a file-like object, or an iterable of JSON-serializable
                values (one per line).

        Raises:
            ValueError: ``data`` is none of the supported types.
        """
        if isinstance(data, str):
            return data
        if _has_read(data):
            return _read(data, type(self).__name__)
        if isinstance(data, Iterable):
            return "\n".join(json.dumps(item, default=_json_default) for item in data)
        raise ValueError(
            f"{type(self).__name__} cannot serialize {type(data).__name__}; expected a str, "
            "file-like object or iterable of JSON-serializable values"
        )


class NumpySerializer(SimpleBaseSerializer):
    """Serialize data to the NumPy ``.npy`` format. Needs numpy.

    Args:
        dtype: The dtype used when converting a list to an array (default: inferred).
        content_type: The MIME type of the data.

    Raises:
        ImportError: numpy is not installed.
    """

    def __init__(self, dtype: Any = None, content_type: str = "application/x-npy") -> None:
        super().__init__(content_type=content_type)
        import_optional("numpy", NUMPY_HINT, type(self).__name__)
        self.dtype = dtype

    def serialize(self, data: Any) -> str | bytes:
        """Serialize ``data`` to ``.npy`` bytes.

        Args:
            data: A NumPy array, a list (converted with ``dtype``), a file-like object assumed
                to hold ``.npy`` data (sent as is), or any object ``numpy.array`` accepts.

        Raises:
            ValueError: ``data`` is empty.
        """
        np = import_optional("numpy", NUMPY_HINT, type(self).__name__)
        if _is_ndarray(data):
            array = data
        elif isinstance(data, list):
            array = np.array(data, dtype=self.dtype)
        elif _has_read(data):
            return _read(data, type(self).__name__)
        else:
            array = np.array(data)
        if array.size == 0:
            raise ValueError(
                f"{type(self).__name__} cannot serialize an empty array (got "
                f"{type(data).__name__} with shape {array.shape}); expected at least one element"
            )
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()


class StringSerializer(SimpleBaseSerializer):
    """Encode a string as UTF-8 bytes."""

    def __init__(self, content_type: str = "text/plain") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> bytes:
        """Encode ``data`` as UTF-8.

        Raises:
            ValueError: ``data`` is not a ``str``.
        """
        if isinstance(data, str):
            return data.encode("utf-8")
        raise ValueError(
            f"{type(self).__name__} cannot serialize {type(data).__name__}; expected str"
        )


class DataSerializer(SimpleBaseSerializer):
    """Send the raw bytes of a file, given its path, or bytes as they are."""

    def __init__(self, content_type: str = "file-path/raw-bytes") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> bytes:
        """Return the bytes of the file at path ``data``, or ``data`` itself if it is bytes.

        Args:
            data: A file path (``str`` or path-like), ``bytes``/``bytearray``, or a dict whose
                ``"data"`` item is one of those.

        Raises:
            ValueError: The file cannot be read, or ``data`` has an unsupported type.
        """
        if isinstance(data, (str, os.PathLike)):
            try:
                with open(data, "rb") as data_file:
                    return data_file.read()
            except OSError as exc:
                raise ValueError(f"Could not open/read file {os.fspath(data)!r}: {exc}") from exc
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        if isinstance(data, dict) and "data" in data:
            return self.serialize(data["data"])
        raise ValueError(
            f"{type(self).__name__} cannot serialize {type(data).__name__}; expected a file path, "
            "bytes, or a dict with a 'data' key"
        )


class LibSVMSerializer(SimpleBaseSerializer):
    """Send data that is already in LIBSVM format (``<label> <index>:<value> ...``)."""

    def __init__(self, content_type: str = "text/libsvm") -> None:
        super().__init__(content_type=content_type)

    def serialize(self, data: Any) -> str | bytes:
        """Return LIBSVM text from a ``str`` or a file-like object.

        Raises:
            ValueError: ``data`` is neither a ``str`` nor file-like.
        """
        if isinstance(data, str):
            return data
        if _has_read(data):
            return _read(data, type(self).__name__)
        raise ValueError(
            f"{type(self).__name__} cannot serialize {type(data).__name__}; expected a str or "
            "file-like object holding LIBSVM text"
        )


class SparseMatrixSerializer(SimpleBaseSerializer):
    """Serialize a SciPy sparse matrix to the ``.npz`` format. Needs scipy.

    Raises:
        ImportError: scipy is not installed.
    """

    def __init__(self, content_type: str = "application/x-npz") -> None:
        super().__init__(content_type=content_type)
        import_optional("scipy.sparse", SCIPY_HINT, type(self).__name__)

    def serialize(self, data: Any) -> bytes:
        """Serialize a sparse matrix (csc, csr, bsr, dia or coo) with ``scipy.sparse.save_npz``.

        Raises:
            ValueError: ``data`` is not a SciPy sparse matrix or array.
        """
        sparse = import_optional("scipy.sparse", SCIPY_HINT, type(self).__name__)
        if not sparse.issparse(data):
            raise ValueError(
                f"{type(self).__name__} cannot serialize {type(data).__name__}; expected a "
                "scipy.sparse matrix or array"
            )
        buffer = io.BytesIO()
        sparse.save_npz(buffer, data)
        return buffer.getvalue()
