"""Behaviour tests for aiosagemaker.serializers (ported from the SageMaker SDK's serde tests)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aiosagemaker.serializers import (
    BaseSerializer,
    CSVSerializer,
    DataSerializer,
    IdentitySerializer,
    JSONLinesSerializer,
    JSONSerializer,
    LibSVMSerializer,
    NumpySerializer,
    SimpleBaseSerializer,
    SparseMatrixSerializer,
    StringSerializer,
)

CSV_TEXT = "1,2,3\n4,5,6\n7,8,9\n"
LIBSVM_TEXT = "0 0:1 5:1\n1 2:0.5 7:3\n"


@pytest.fixture
def csv_serializer() -> CSVSerializer:
    return CSVSerializer()


@pytest.fixture
def numpy_serializer() -> NumpySerializer:
    return NumpySerializer()


@pytest.fixture
def json_serializer() -> JSONSerializer:
    return JSONSerializer()


@pytest.fixture
def json_lines_serializer() -> JSONLinesSerializer:
    return JSONLinesSerializer()


@pytest.fixture
def libsvm_serializer() -> LibSVMSerializer:
    return LibSVMSerializer()


@pytest.fixture
def data_serializer() -> DataSerializer:
    return DataSerializer()


# -- CSV -------------------------------------------------------------------------------------


def test_csv_serializer_str(csv_serializer: CSVSerializer) -> None:
    assert csv_serializer.serialize("1,2,3") == "1,2,3"


def test_csv_serializer_python_array(csv_serializer: CSVSerializer) -> None:
    assert csv_serializer.serialize([1, 2, 3]) == "1,2,3"


def test_csv_serializer_numpy_valid(csv_serializer: CSVSerializer) -> None:
    assert csv_serializer.serialize(np.array([1, 2, 3])) == "1,2,3"


def test_csv_serializer_numpy_valid_2dimensional(csv_serializer: CSVSerializer) -> None:
    assert csv_serializer.serialize(np.array([[1, 2, 3], [3, 4, 5]])) == "1,2,3\n3,4,5"


def test_csv_serializer_numpy_floats_are_plain_numbers(csv_serializer: CSVSerializer) -> None:
    assert csv_serializer.serialize(np.array([1.5, 2.0])) == "1.5,2.0"


def test_csv_serializer_list_of_str(csv_serializer: CSVSerializer) -> None:
    assert csv_serializer.serialize(["1,2,3", "4,5,6"]) == "1,2,3\n4,5,6"


def test_csv_serializer_list_of_list(csv_serializer: CSVSerializer) -> None:
    assert csv_serializer.serialize([[1, 2, 3], [3, 4, 5]]) == "1,2,3\n3,4,5"


def test_csv_serializer_list_of_empty(csv_serializer: CSVSerializer) -> None:
    with pytest.raises(ValueError, match="empty array"):
        csv_serializer.serialize(np.array([[], []]))


def test_csv_serializer_numpy_invalid_empty(csv_serializer: CSVSerializer) -> None:
    with pytest.raises(ValueError, match=r"empty array \(got an empty ndarray\)"):
        csv_serializer.serialize(np.array([]))


def test_csv_serializer_python_invalid_empty(csv_serializer: CSVSerializer) -> None:
    with pytest.raises(ValueError, match="empty array"):
        csv_serializer.serialize([])


def test_csv_serializer_unsupported_type(csv_serializer: CSVSerializer) -> None:
    with pytest.raises(ValueError, match="cannot serialize int; expected a str"):
        csv_serializer.serialize(42)


def test_csv_serializer_csv_reader(csv_serializer: CSVSerializer, tmp_path: Path) -> None:
    path = tmp_path / "with_integers.csv"
    path.write_text(CSV_TEXT)
    with path.open() as csv_file:
        assert csv_serializer.serialize(csv_file) == CSV_TEXT


def test_csv_serializer_dataframe(csv_serializer: CSVSerializer) -> None:
    frame = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "b"], index=["x", "y"])
    assert csv_serializer.serialize(frame) == "1,2\n3,4\n"


# -- NumPy -----------------------------------------------------------------------------------


def _load(payload: Any, allow_pickle: bool = False) -> Any:
    assert isinstance(payload, bytes)
    return np.load(io.BytesIO(payload), allow_pickle=allow_pickle)


def test_numpy_serializer_python_array(numpy_serializer: NumpySerializer) -> None:
    array = [1, 2, 3]
    assert np.array_equal(array, _load(numpy_serializer.serialize(array)))


def test_numpy_serializer_python_array_with_dtype() -> None:
    array = [1, 2, 3]
    deserialized = _load(NumpySerializer(dtype="float16").serialize(array))
    assert np.array_equal(array, deserialized)
    assert deserialized.dtype == "float16"


def test_numpy_serializer_numpy_valid_2_dimensional(numpy_serializer: NumpySerializer) -> None:
    array = np.array([[1, 2, 3], [3, 4, 5]])
    assert np.array_equal(array, _load(numpy_serializer.serialize(array)))


def test_numpy_serializer_numpy_valid_multidimensional(numpy_serializer: NumpySerializer) -> None:
    array = np.ones((10, 10, 10, 10))
    assert np.array_equal(array, _load(numpy_serializer.serialize(array)))


def test_numpy_serializer_numpy_valid_list_of_strings(numpy_serializer: NumpySerializer) -> None:
    array = np.array(["one", "two", "three"])
    assert np.array_equal(array, _load(numpy_serializer.serialize(array)))


def test_numpy_serializer_from_buffer_or_file(numpy_serializer: NumpySerializer) -> None:
    array = np.ones((2, 3))
    stream = io.BytesIO()
    np.save(stream, array)
    stream.seek(0)
    assert np.array_equal(array, _load(numpy_serializer.serialize(stream)))


def test_numpy_serializer_object(numpy_serializer: NumpySerializer) -> None:
    data = {1, 2, 3}
    result = _load(numpy_serializer.serialize(data), allow_pickle=True)
    assert np.array_equal(np.array(data), result)


def test_numpy_serializer_list_of_empty(numpy_serializer: NumpySerializer) -> None:
    with pytest.raises(ValueError, match="empty array"):
        numpy_serializer.serialize(np.array([[], []]))


def test_numpy_serializer_numpy_invalid_empty(numpy_serializer: NumpySerializer) -> None:
    with pytest.raises(ValueError, match=r"empty array \(got ndarray with shape \(0,\)\)"):
        numpy_serializer.serialize(np.array([]))


def test_numpy_serializer_python_invalid_empty(numpy_serializer: NumpySerializer) -> None:
    with pytest.raises(ValueError, match="empty array"):
        numpy_serializer.serialize([])


def test_numpy_serializer_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    with pytest.raises(ImportError, match=r"pip install 'aiosagemaker\[numpy\]'") as info:
        NumpySerializer()
    assert "NumpySerializer needs numpy" in str(info.value)


# -- JSON ------------------------------------------------------------------------------------


def test_json_serializer_numpy_valid(json_serializer: JSONSerializer) -> None:
    assert json_serializer.serialize(np.array([1, 2, 3])) == "[1, 2, 3]"


def test_json_serializer_numpy_valid_2dimensional(json_serializer: JSONSerializer) -> None:
    assert json_serializer.serialize(np.array([[1, 2, 3], [3, 4, 5]])) == "[[1, 2, 3], [3, 4, 5]]"


def test_json_serializer_empty(json_serializer: JSONSerializer) -> None:
    assert json_serializer.serialize(np.array([])) == "[]"


def test_json_serializer_python_array(json_serializer: JSONSerializer) -> None:
    assert json_serializer.serialize([1, 2, 3]) == "[1, 2, 3]"


def test_json_serializer_python_dictionary(json_serializer: JSONSerializer) -> None:
    d = {"gender": "m", "age": 22, "city": "Paris"}
    result = json_serializer.serialize(d)
    assert isinstance(result, str)
    assert json.loads(result) == d


def test_json_serializer_dictionary_of_arrays(json_serializer: JSONSerializer) -> None:
    data = {"instances": np.array([[1, 2], [3, 4]]), "scale": np.float32(0.5), "n": 2}
    assert (
        json_serializer.serialize(data) == '{"instances": [[1, 2], [3, 4]], "scale": 0.5, "n": 2}'
    )


def test_json_serializer_python_invalid_empty(json_serializer: JSONSerializer) -> None:
    assert json_serializer.serialize([]) == "[]"


def test_json_serializer_python_dictionary_invalid_empty(json_serializer: JSONSerializer) -> None:
    assert json_serializer.serialize({}) == "{}"


def test_json_serializer_csv_buffer(json_serializer: JSONSerializer, tmp_path: Path) -> None:
    path = tmp_path / "with_integers.csv"
    path.write_text(CSV_TEXT)
    with path.open() as csv_file:
        assert json_serializer.serialize(csv_file) == CSV_TEXT


def test_json_serializer_not_serializable(json_serializer: JSONSerializer) -> None:
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        json_serializer.serialize({"x": object()})


# -- Identity --------------------------------------------------------------------------------


def test_identity_serializer() -> None:
    identity_serializer = IdentitySerializer()
    assert identity_serializer.serialize(b"{}") == b"{}"
    assert identity_serializer.CONTENT_TYPE == "application/octet-stream"


def test_identity_serializer_with_custom_content_type() -> None:
    identity_serializer = IdentitySerializer(content_type="text/csv")
    assert identity_serializer.serialize(b"a,b\n1,2") == b"a,b\n1,2"
    assert identity_serializer.CONTENT_TYPE == "text/csv"


# -- JSON Lines ------------------------------------------------------------------------------

JSON_LINES_TEXT_CASES = [
    ('["Name", "Score"]\n["Gilbert", 24]', '["Name", "Score"]\n["Gilbert", 24]'),
    (
        '{"Name": "Gilbert", "Score": 24}\n{"Name": "Alexa", "Score": 29}',
        '{"Name": "Gilbert", "Score": 24}\n{"Name": "Alexa", "Score": 29}',
    ),
]


@pytest.mark.parametrize(("source", "expected"), JSON_LINES_TEXT_CASES)
def test_json_lines_serializer_string(
    json_lines_serializer: JSONLinesSerializer, source: str, expected: str
) -> None:
    assert json_lines_serializer.serialize(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ([["Name", "Score"], ["Gilbert", 24]], '["Name", "Score"]\n["Gilbert", 24]'),
        (
            [{"Name": "Gilbert", "Score": 24}, {"Name": "Alexa", "Score": 29}],
            '{"Name": "Gilbert", "Score": 24}\n{"Name": "Alexa", "Score": 29}',
        ),
    ],
)
def test_json_lines_serializer_list(
    json_lines_serializer: JSONLinesSerializer, source: list[Any], expected: str
) -> None:
    assert json_lines_serializer.serialize(source) == expected


@pytest.mark.parametrize(("source", "expected"), JSON_LINES_TEXT_CASES)
def test_json_lines_serializer_file_like(
    json_lines_serializer: JSONLinesSerializer, source: str, expected: str
) -> None:
    assert json_lines_serializer.serialize(io.StringIO(source)) == expected


def test_json_lines_serializer_unsupported(json_lines_serializer: JSONLinesSerializer) -> None:
    with pytest.raises(ValueError, match="cannot serialize int; expected a str, file-like"):
        json_lines_serializer.serialize(3)


# -- Sparse, LibSVM, data, string ------------------------------------------------------------


def test_sparse_matrix_serializer() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    data = sparse.csc_matrix(np.array([[0, 0, 3], [4, 0, 0]]))
    payload = SparseMatrixSerializer().serialize(data)
    result = sparse.load_npz(io.BytesIO(payload)).toarray()
    assert np.array_equal(result, data.toarray())


def test_sparse_matrix_serializer_rejects_dense() -> None:
    pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match=r"expected a scipy\.sparse matrix"):
        SparseMatrixSerializer().serialize(np.ones((2, 2)))


def test_sparse_matrix_serializer_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(ImportError, match="SparseMatrixSerializer needs scipy"):
        SparseMatrixSerializer()


def test_libsvm_serializer_str(libsvm_serializer: LibSVMSerializer) -> None:
    assert libsvm_serializer.serialize("0 0:1 5:1") == "0 0:1 5:1"


def test_libsvm_serializer_file_like(libsvm_serializer: LibSVMSerializer, tmp_path: Path) -> None:
    path = tmp_path / "abalone"
    path.write_text(LIBSVM_TEXT)
    with path.open() as libsvm_file:
        assert libsvm_serializer.serialize(libsvm_file) == LIBSVM_TEXT


def test_libsvm_serializer_unsupported(libsvm_serializer: LibSVMSerializer) -> None:
    with pytest.raises(ValueError, match="cannot serialize list; expected a str or file-like"):
        libsvm_serializer.serialize([1, 2])


IMAGE_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256))


def test_data_serializer_raw(data_serializer: DataSerializer) -> None:
    assert data_serializer.serialize(IMAGE_BYTES) == IMAGE_BYTES


def test_data_serializer_file_like(data_serializer: DataSerializer, tmp_path: Path) -> None:
    path = tmp_path / "cuteCat.jpg"
    path.write_bytes(IMAGE_BYTES)
    assert data_serializer.serialize(str(path)) == IMAGE_BYTES
    assert data_serializer.serialize(path) == IMAGE_BYTES
    assert data_serializer.serialize({"data": str(path)}) == IMAGE_BYTES


def test_data_serializer_missing_file(data_serializer: DataSerializer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Could not open/read file"):
        data_serializer.serialize(str(tmp_path / "missing.jpg"))


def test_data_serializer_unsupported(data_serializer: DataSerializer) -> None:
    with pytest.raises(ValueError, match="cannot serialize int; expected a file path"):
        data_serializer.serialize(1)


def test_string_serializer() -> None:
    serializer = StringSerializer()
    assert serializer.CONTENT_TYPE == "text/plain"
    assert serializer.serialize("héllo") == "héllo".encode()
    with pytest.raises(ValueError, match="cannot serialize bytes; expected str"):
        serializer.serialize(b"x")


# -- Base classes and imports ----------------------------------------------------------------


def test_simple_base_serializer_rejects_non_str_content_type() -> None:
    with pytest.raises(ValueError, match=r"content_type must be a str.*got 1 \(int\)"):
        JSONSerializer(content_type=1)  # type: ignore[arg-type]


def test_base_serializer_subclass() -> None:
    class Upper(SimpleBaseSerializer):
        def serialize(self, data: Any) -> bytes:
            return str(data).upper().encode()

    serializer = Upper(content_type="text/plain")
    assert isinstance(serializer, BaseSerializer)
    assert serializer.CONTENT_TYPE == "text/plain"
    assert serializer.serialize("ab") == b"AB"
    with pytest.raises(TypeError):
        SimpleBaseSerializer()  # type: ignore[abstract]


def test_plain_data_does_not_need_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)
    monkeypatch.setitem(sys.modules, "pandas", None)
    assert JSONSerializer().serialize({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert CSVSerializer().serialize([[1, 2], [3, 4]]) == "1,2\n3,4"
    assert JSONLinesSerializer().serialize([{"a": 1}, [2]]) == '{"a": 1}\n[2]'


def test_import_does_not_import_optional_dependencies() -> None:
    code = (
        "import sys, aiosagemaker.serializers, aiosagemaker.deserializers; "
        "assert 'numpy' not in sys.modules; assert 'pandas' not in sys.modules; "
        "assert 'scipy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
