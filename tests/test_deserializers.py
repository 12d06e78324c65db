"""Behaviour tests for aiosagemaker.deserializers (ported from the SageMaker SDK's serde tests)."""

from __future__ import annotations

import io
import json
import sys
from types import FrameType
from typing import IO, Any

import numpy as np
import pandas as pd
import pytest

from aiosagemaker.deserializers import (
    OFF_LOOP_BYTES,
    BaseDeserializer,
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    JSONLinesDeserializer,
    NumpyDeserializer,
    PandasDeserializer,
    SimpleBaseDeserializer,
    StreamDeserializer,
    StringDeserializer,
)


@pytest.fixture
def csv_deserializer() -> CSVDeserializer:
    return CSVDeserializer()


@pytest.fixture
def numpy_deserializer() -> NumpyDeserializer:
    return NumpyDeserializer()


@pytest.fixture
def json_deserializer() -> JSONDeserializer:
    return JSONDeserializer()


@pytest.fixture
def pandas_deserializer() -> PandasDeserializer:
    return PandasDeserializer()


@pytest.fixture
def json_lines_deserializer() -> JSONLinesDeserializer:
    return JSONLinesDeserializer()


def _npy(array: Any) -> io.BytesIO:
    stream = io.BytesIO()
    np.save(stream, array)
    stream.seek(0)
    return stream


# -- bytes, str, stream ----------------------------------------------------------------------


def test_string_deserializer() -> None:
    stream = io.BytesIO(b"[1, 2, 3]")
    assert StringDeserializer().deserialize(stream, "application/json") == "[1, 2, 3]"
    assert stream.closed


def test_string_deserializer_bad_encoding() -> None:
    with pytest.raises(ValueError, match=r"could not decode .*'text/plain'.* as UTF-8"):
        StringDeserializer().deserialize(io.BytesIO(b"\xff\xfe\xfa"), "text/plain")


def test_bytes_deserializer() -> None:
    stream = io.BytesIO(b"[1, 2, 3]")
    assert BytesDeserializer().deserialize(stream, "application/json") == b"[1, 2, 3]"
    assert stream.closed


def test_stream_deserializer() -> None:
    stream, content_type = StreamDeserializer().deserialize(
        io.BytesIO(b"[1, 2, 3]"), "application/json"
    )
    try:
        result = stream.read()
    finally:
        stream.close()
    assert result == b"[1, 2, 3]"
    assert content_type == "application/json"


# -- CSV -------------------------------------------------------------------------------------


def test_csv_deserializer_single_element(csv_deserializer: CSVDeserializer) -> None:
    assert csv_deserializer.deserialize(io.BytesIO(b"1"), "text/csv") == [["1"]]


def test_csv_deserializer_array(csv_deserializer: CSVDeserializer) -> None:
    assert csv_deserializer.deserialize(io.BytesIO(b"1,2,3"), "text/csv") == [["1", "2", "3"]]


def test_csv_deserializer_2dimensional(csv_deserializer: CSVDeserializer) -> None:
    result = csv_deserializer.deserialize(io.BytesIO(b"1,2,3\n3,4,5"), "text/csv")
    assert result == [["1", "2", "3"], ["3", "4", "5"]]


def test_csv_deserializer_posix_compliant(csv_deserializer: CSVDeserializer) -> None:
    stream = io.BytesIO(b"1,2,3\n3,4,5\n")
    assert csv_deserializer.deserialize(stream, "text/csv") == [["1", "2", "3"], ["3", "4", "5"]]
    assert stream.closed


ROW = b'"a,b",c\n'  # 8 bytes: OFF_LOOP_BYTES holds a whole number of rows
AT_LIMIT = OFF_LOOP_BYTES // len(ROW)


def _parse_counting_lines(body: bytes) -> tuple[list[list[str]], int]:
    """Parse ``body`` as CSV; also count the Python lines ``deserialize`` itself ran."""
    code = CSVDeserializer.deserialize.__code__
    lines = 0

    def count(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal lines
        lines += event == "line"
        return count

    def enter(frame: FrameType, event: str, arg: Any) -> Any:
        return count if frame.f_code is code else None

    previous = sys.gettrace()
    sys.settrace(enter)
    try:
        rows = CSVDeserializer().deserialize(io.BytesIO(body), "text/csv")
    finally:
        sys.settrace(previous)
    return rows, lines


@pytest.mark.parametrize("count", [AT_LIMIT, AT_LIMIT + 1])
def test_csv_deserializer_same_rows_on_both_sides_of_off_loop_bytes(count: int) -> None:
    rows, _ = _parse_counting_lines(ROW * count)
    assert len(ROW * AT_LIMIT) == OFF_LOOP_BYTES
    assert rows == [["a,b", "c"]] * count


def test_csv_deserializer_loops_in_python_only_above_off_loop_bytes() -> None:
    # at or below the limit a result is decoded on the event loop: one C call parses it all;
    # above, in a worker thread, a Python loop lets the loop's thread run between rows
    _, on_loop = _parse_counting_lines(ROW * AT_LIMIT)
    _, in_thread = _parse_counting_lines(ROW * (AT_LIMIT + 1))
    assert on_loop < 20, on_loop
    assert in_thread > AT_LIMIT, in_thread


# -- NumPy -----------------------------------------------------------------------------------


def test_numpy_deserializer_from_csv(numpy_deserializer: NumpyDeserializer) -> None:
    array = numpy_deserializer.deserialize(io.BytesIO(b"1,2,3\n4,5,6"), "text/csv")
    assert np.array_equal(array, np.array([[1, 2, 3], [4, 5, 6]]))


def test_numpy_deserializer_from_csv_ragged(numpy_deserializer: NumpyDeserializer) -> None:
    with pytest.raises(ValueError, match="errors were detected") as error:
        numpy_deserializer.deserialize(io.BytesIO(b"1,2,3\n4,5,6,7"), "text/csv")
    assert "NumpyDeserializer could not load the 'text/csv' response body" in str(error.value)


def test_numpy_deserializer_from_csv_alpha() -> None:
    stream = io.BytesIO(b"hello,2,3\n4,5,6")
    array = NumpyDeserializer(dtype="U5").deserialize(stream, "text/csv")
    assert np.array_equal(array, np.array([["hello", 2, 3], [4, 5, 6]]))


def test_numpy_deserializer_from_json(numpy_deserializer: NumpyDeserializer) -> None:
    array = numpy_deserializer.deserialize(io.BytesIO(b"[[1,2,3],\n[4,5,6]]"), "application/json")
    assert np.array_equal(array, np.array([[1, 2, 3], [4, 5, 6]]))


def test_numpy_deserializer_from_json_ragged(numpy_deserializer: NumpyDeserializer) -> None:
    with pytest.raises(ValueError, match="requested array has an inhomogeneous shape"):
        numpy_deserializer.deserialize(io.BytesIO(b"[[1,2,3],\n[4,5,6,7]]"), "application/json")


def test_numpy_deserializer_from_json_alpha() -> None:
    stream = io.BytesIO(b'[["hello",2,3],\n[4,5,6]]')
    array = NumpyDeserializer(dtype="U5").deserialize(stream, "application/json")
    assert np.array_equal(array, np.array([["hello", 2, 3], [4, 5, 6]]))


def test_numpy_deserializer_from_npy(numpy_deserializer: NumpyDeserializer) -> None:
    array = np.ones((2, 3))
    stream = _npy(array)
    assert np.array_equal(array, numpy_deserializer.deserialize(stream, "application/x-npy"))
    assert stream.closed


def test_numpy_deserializer_from_npy_object_array() -> None:
    array = np.array([{"a": "", "b": ""}, {"c": "", "d": ""}])
    result = NumpyDeserializer(allow_pickle=True).deserialize(_npy(array), "application/x-npy")
    assert np.array_equal(array, result)


def test_numpy_deserializer_from_npy_object_array_with_allow_pickle_false() -> None:
    array = np.array([{"a": "", "b": ""}, {"c": "", "d": ""}])
    with pytest.raises(ValueError, match="pass allow_pickle=True only if you trust"):
        NumpyDeserializer().deserialize(_npy(array), "application/x-npy")


def test_numpy_deserializer_from_npz(numpy_deserializer: NumpyDeserializer) -> None:
    arrays = {"alpha": np.ones((2, 3)), "beta": np.zeros((3, 2))}
    stream = io.BytesIO()
    np.savez_compressed(stream, **arrays)  # type: ignore[arg-type]
    stream.seek(0)
    with numpy_deserializer.deserialize(stream, "application/x-npz") as result:
        assert isinstance(result, np.lib.npyio.NpzFile)
        assert set(arrays) == set(result.keys())
        for key, arr in arrays.items():
            assert np.array_equal(arr, result[key])


def test_numpy_deserializer_unsupported_content_type(
    numpy_deserializer: NumpyDeserializer,
) -> None:
    stream = io.BytesIO(b"x")
    with pytest.raises(ValueError, match=r"cannot read content type 'text/plain'; expected one of"):
        numpy_deserializer.deserialize(stream, "text/plain")
    assert stream.closed


def test_numpy_deserializer_content_type_parameters_ignored(
    numpy_deserializer: NumpyDeserializer,
) -> None:
    stream = io.BytesIO(b"[1, 2]")
    array = numpy_deserializer.deserialize(stream, "Application/JSON; charset=utf-8")
    assert np.array_equal(array, np.array([1, 2]))


def test_numpy_deserializer_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(ImportError, match=r"NumpyDeserializer needs numpy.*aiosagemaker\[numpy\]"):
        NumpyDeserializer()


# -- JSON ------------------------------------------------------------------------------------


def test_json_deserializer_array(json_deserializer: JSONDeserializer) -> None:
    stream = io.BytesIO(b"[1, 2, 3]")
    assert json_deserializer.deserialize(stream, "application/json") == [1, 2, 3]
    assert stream.closed


def test_json_deserializer_2dimensional(json_deserializer: JSONDeserializer) -> None:
    stream = io.BytesIO(b"[[1, 2, 3], [3, 4, 5]]")
    assert json_deserializer.deserialize(stream, "application/json") == [[1, 2, 3], [3, 4, 5]]


def test_json_deserializer_invalid_data(json_deserializer: JSONDeserializer) -> None:
    with pytest.raises(ValueError, match="column") as error:
        json_deserializer.deserialize(io.BytesIO(b"[[1]"), "application/json")
    assert isinstance(error.value, json.JSONDecodeError)
    assert "JSONDeserializer could not parse the 'application/json' response body" in str(
        error.value
    )


def test_json_deserializer_not_utf8(json_deserializer: JSONDeserializer) -> None:
    with pytest.raises(ValueError, match=r"could not decode .* as JSON text"):
        json_deserializer.deserialize(io.BytesIO(b'"\xff"'), "application/json")


def test_json_deserializer_content_type_parameters(json_deserializer: JSONDeserializer) -> None:
    stream = io.BytesIO('{"a": "é"}'.encode())
    assert json_deserializer.deserialize(stream, "application/json; charset=utf-8") == {"a": "é"}


# -- pandas ----------------------------------------------------------------------------------


def test_pandas_deserializer_json(pandas_deserializer: PandasDeserializer) -> None:
    data = {"col 1": {"row 1": "a", "row 2": "c"}, "col 2": {"row 1": "b", "row 2": "d"}}
    stream = io.BytesIO(json.dumps(data).encode("utf-8"))
    result = pandas_deserializer.deserialize(stream, "application/json")
    expected = pd.DataFrame(
        [["a", "b"], ["c", "d"]], index=["row 1", "row 2"], columns=["col 1", "col 2"]
    )
    assert result.equals(expected)


def test_pandas_deserializer_csv(pandas_deserializer: PandasDeserializer) -> None:
    stream = io.BytesIO(b"col 1,col 2\na,b\nc,d")
    result = pandas_deserializer.deserialize(stream, "text/csv; charset=utf-8")
    expected = pd.DataFrame([["a", "b"], ["c", "d"]], columns=["col 1", "col 2"])
    assert result.equals(expected)


def test_pandas_deserializer_unsupported(pandas_deserializer: PandasDeserializer) -> None:
    with pytest.raises(
        ValueError, match=r"'application/x-npy'; expected one of text/csv, application/json"
    ):
        pandas_deserializer.deserialize(io.BytesIO(b""), "application/x-npy")


def test_pandas_deserializer_invalid_body(pandas_deserializer: PandasDeserializer) -> None:
    with pytest.raises(ValueError, match=r"'text/csv' response body \(0 bytes\) with pandas"):
        pandas_deserializer.deserialize(io.BytesIO(b""), "text/csv")


def test_pandas_deserializer_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'aiosagemaker\[pandas\]'"):
        PandasDeserializer()


# -- JSON Lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (b'["Name", "Score"]\n["Gilbert", 24]', [["Name", "Score"], ["Gilbert", 24]]),
        (b'["Name", "Score"]\n["Gilbert", 24]\n', [["Name", "Score"], ["Gilbert", 24]]),
        (
            b'{"Name": "Gilbert", "Score": 24}\n{"Name": "Alexa", "Score": 29}',
            [{"Name": "Gilbert", "Score": 24}, {"Name": "Alexa", "Score": 29}],
        ),
    ],
)
def test_json_lines_deserializer(
    json_lines_deserializer: JSONLinesDeserializer, source: bytes, expected: list[Any]
) -> None:
    stream = io.BytesIO(source)
    assert json_lines_deserializer.deserialize(stream, "application/jsonlines") == expected
    assert stream.closed


def test_json_lines_deserializer_empty(json_lines_deserializer: JSONLinesDeserializer) -> None:
    assert json_lines_deserializer.deserialize(io.BytesIO(b"\n"), "application/jsonlines") == []


def test_json_lines_deserializer_invalid_line(
    json_lines_deserializer: JSONLinesDeserializer,
) -> None:
    with pytest.raises(ValueError, match=r"could not parse line 2 .*got '\{oops'"):
        json_lines_deserializer.deserialize(io.BytesIO(b"[1]\n{oops\n"), "application/jsonlines")


# -- Base classes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deserializer", "accept"),
    [
        (BytesDeserializer(), ("*/*",)),
        (StringDeserializer(), ("application/json",)),
        (JSONDeserializer(accept="application/jsonl"), ("application/jsonl",)),
        (CSVDeserializer(), ("text/csv",)),
        (StreamDeserializer(), ("*/*",)),
        (NumpyDeserializer(), ("application/x-npy",)),
        (PandasDeserializer(), ("text/csv", "application/json")),
        (JSONLinesDeserializer(), ("application/jsonlines",)),
    ],
)
def test_accept_is_always_a_tuple(
    deserializer: SimpleBaseDeserializer, accept: tuple[str, ...]
) -> None:
    assert accept == deserializer.ACCEPT


def test_simple_base_deserializer_rejects_bad_accept() -> None:
    with pytest.raises(ValueError, match=r"accept must be a str MIME type .*got 3"):
        BytesDeserializer(accept=3)  # type: ignore[arg-type]


def test_base_deserializer_subclass() -> None:
    class Upper(SimpleBaseDeserializer):
        def deserialize(self, stream: IO[bytes], content_type: str) -> str:
            with stream:
                return stream.read().decode().upper()

    deserializer = Upper(accept="text/plain")
    assert isinstance(deserializer, BaseDeserializer)
    assert deserializer.ACCEPT == ("text/plain",)
    assert deserializer.deserialize(io.BytesIO(b"ab"), "text/plain") == "AB"
    with pytest.raises(TypeError):
        SimpleBaseDeserializer()  # type: ignore[abstract]
