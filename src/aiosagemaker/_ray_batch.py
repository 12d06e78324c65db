"""One Ray Data batch, in whichever of its formats it came, for :mod:`aiosagemaker.ray`.

A dict of numpy arrays, a pandas DataFrame or a pyarrow Table: read an input column as a list,
add the outcome columns. numpy and pyarrow are imported only when a batch of that kind arrives.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RayBatch"]


class RayBatch:
    """One batch in whichever of Ray's formats it came: read a column, add columns."""

    def __init__(self, batch: Any, kind: str) -> None:
        self.batch = batch
        self.kind = kind

    @classmethod
    def of(cls, batch: Any) -> RayBatch:
        if isinstance(batch, dict):
            return cls(batch, "numpy")
        module = type(batch).__module__.split(".")[0]
        if module == "pandas" and hasattr(batch, "assign"):
            return cls(batch, "pandas")
        if module == "pyarrow" and hasattr(batch, "append_column"):
            return cls(batch, "pyarrow")
        raise TypeError(
            "AsyncInferenceMapper takes batches as a dict of arrays, a pandas DataFrame or a "
            f"pyarrow Table (map_batches' batch_format 'numpy', 'pandas' or 'pyarrow'), got "
            f"{type(batch).__name__}"
        )

    def names(self) -> list[str]:
        if self.kind == "numpy":
            return list(self.batch)
        if self.kind == "pandas":
            return [str(name) for name in self.batch.columns]
        return list(self.batch.column_names)

    def values(self, column: str) -> list[Any]:
        if column not in self.names():
            raise KeyError(
                f"the batch has no column {column!r} (its columns: {self.names()}); pass "
                "column='<input column>' in fn_constructor_kwargs"
            )
        if self.kind == "numpy":
            return list(self.batch[column])
        if self.kind == "pandas":  # a missing value (NaN, NA, NaT) is None, as in the others
            series = self.batch[column]
            missing = series.isna()
            return [None if gap else value for value, gap in zip(series, missing, strict=True)]
        return list(self.batch.column(column).to_pylist())

    def with_columns(self, columns: dict[str, list[Any]]) -> Any:
        if self.kind == "numpy":
            import numpy

            out = dict(self.batch)
            for name, values in columns.items():
                array = numpy.empty(len(values), dtype=object)
                array[:] = values
                out[name] = array
            return out
        if self.kind == "pandas":
            return self.batch.assign(**columns)
        import pyarrow

        table = self.batch
        for name, values in columns.items():
            if name in table.column_names:
                table = table.drop_columns([name])
            typed = pyarrow.string() if name != "result" or _all_str(values) else None
            try:
                array = pyarrow.array(values, type=typed)
            except (pyarrow.ArrowException, TypeError, ValueError) as error:
                raise TypeError(
                    f"the results of this batch do not fit one Arrow column ({error}); use "
                    "result_format='json' (the default), or a batch_format other than 'pyarrow'"
                ) from error
            table = table.append_column(name, array)
        return table


def _all_str(values: list[Any]) -> bool:
    return all(value is None or isinstance(value, str) for value in values)
