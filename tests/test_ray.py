"""aiosagemaker.ray: AsyncInferenceMapper in-process and on a local Ray cluster (nox -s ray).

The cluster test starts Ray on 127.0.0.1 (2 CPUs, no dashboard); its actors reach the session's
emulator and moto through ``endpoint_urls`` and get the dummy credentials from the runtime_env.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from aiosagemaker import (
    BytesDeserializer,
    IdentitySerializer,
    JSONDeserializer,
    RetryPolicy,
    WaiterConfig,
)
from aiosagemaker.local import LocalEndpoint
from cli_helpers import run_example
from conftest import BUCKET, GATES

ray = pytest.importorskip("ray", reason="needs ray: pip install '.[ray]' (nox -s ray runs these)")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")

from aiosagemaker.ray import OUTCOME_COLUMNS, ActorSummary, AsyncInferenceMapper  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")  # Ray's internals
WAITER = WaiterConfig(max_attempts=None, delay=0.2, backoff=1.5, max_delay=2, timeout=120)


def spec(index: int) -> str:
    """Row ``index``'s payload for the scripted model: every 97th one fails."""
    if index % 97 == 13:
        return json.dumps({"fail": f"planted failure {index}"})
    return json.dumps({"output": {"id": index, "twice": 2 * index}})


def mapper(**kwargs: Any) -> AsyncInferenceMapper:
    options: dict[str, Any] = {
        "endpoint_name": "scripted",
        "serializer": IdentitySerializer("application/json"),
        "deserializer": JSONDeserializer(),
        "waiter_config": WAITER,
        "default_bucket": BUCKET,
        "inline": "auto",
    }
    return AsyncInferenceMapper(**{**options, **kwargs})


def write_summary(directory: str, summary: ActorSummary) -> None:
    """``on_close`` of the cluster test: one file per closed actor."""
    record = {**dataclasses.asdict(summary), "pid": os.getpid()}
    Path(directory, f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))


# -- in-process: the mapper called as Ray calls it, on the test's event loop -------------------


@pytest.mark.anyio
async def test_a_numpy_batch_gains_outcome_columns(aws_env: dict[str, str]) -> None:
    numpy = pytest.importorskip("numpy")
    the_mapper = mapper()
    batch = {"id": numpy.arange(30), "data": numpy.array([spec(i) for i in range(30)], object)}
    try:
        out = await the_mapper(batch)
    finally:
        await the_mapper.aclose()
    assert list(out) == ["id", "data", *OUTCOME_COLUMNS]
    for i in range(30):
        if i == 13:
            assert out["result"][i] is None
            assert out["error_type"][i] == "AsyncInferenceModelError"
            assert "planted failure 13" in out["error_message"][i]
        else:
            assert json.loads(out["result"][i]) == {"id": i, "twice": 2 * i}
            assert out["error_type"][i] is None and out["error_message"][i] is None
        assert out["output_location"][i].startswith("s3://")
        assert out["inference_id"][i]
    assert len(set(out["inference_id"])) == 30


@pytest.mark.anyio
async def test_pandas_and_arrow_batches_keep_their_format(aws_env: dict[str, str]) -> None:
    the_mapper = mapper()
    frame = pd.DataFrame({"id": [0, 1, 13], "data": [spec(0), spec(1), spec(13)]})
    try:
        out_frame = await the_mapper(frame)
        out_table = await the_mapper(pa.Table.from_pandas(frame))
    finally:
        await the_mapper.aclose()
    assert isinstance(out_frame, pd.DataFrame)
    assert list(out_frame.columns) == ["id", "data", *OUTCOME_COLUMNS]
    assert json.loads(out_frame["result"][1]) == {"id": 1, "twice": 2}
    assert out_frame["error_type"][2] == "AsyncInferenceModelError"
    assert isinstance(out_table, pa.Table)
    assert out_table.schema.field("result").type == pa.string()
    assert out_table.schema.field("error_type").type == pa.string()
    rows = out_table.to_pylist()
    assert json.loads(rows[0]["result"]) == {"id": 0, "twice": 0}
    assert rows[2]["result"] is None and rows[2]["error_type"] == "AsyncInferenceModelError"


@pytest.mark.anyio
async def test_a_second_pass_replaces_the_outcome_columns(aws_env: dict[str, str]) -> None:
    """The failed rows of a first pass can be sent again as they are."""
    the_mapper = mapper()
    try:
        first = await the_mapper(pd.DataFrame({"data": [spec(13)]}))
        second = await the_mapper(first.assign(data=[spec(5)]))
    finally:
        await the_mapper.aclose()
    assert list(second.columns) == ["data", *OUTCOME_COLUMNS]
    assert pd.isna(second["error_type"][0])
    assert json.loads(second["result"][0]) == {"id": 5, "twice": 10}


@pytest.mark.anyio
async def test_bytes_results_are_a_row_error_naming_s3_unless_raw(aws_env: dict[str, str]) -> None:
    as_json = mapper(deserializer=BytesDeserializer())
    raw = mapper(deserializer=BytesDeserializer(), result_format="raw")
    batch = pd.DataFrame({"data": [spec(3)]})
    try:
        refused = await as_json(batch)
        kept = await raw(batch)
    finally:
        await as_json.aclose()
        await raw.aclose()
    assert pd.isna(refused["result"][0])
    assert refused["error_type"][0] == "TypeError"
    assert refused["output_location"][0] in refused["error_message"][0]
    assert "result_format='raw'" in refused["error_message"][0]
    assert json.loads(kept["result"][0]) == {"id": 3, "twice": 6}


@pytest.mark.anyio
async def test_a_missing_value_is_a_row_error(aws_env: dict[str, str]) -> None:
    the_mapper = mapper()
    try:
        out = await the_mapper(pd.DataFrame({"data": [None, spec(2)]}))
    finally:
        await the_mapper.aclose()
    assert out["error_type"][0] == "ValueError"
    assert pd.isna(out["inference_id"][0]) and pd.isna(out["output_location"][0])
    assert json.loads(out["result"][1]) == {"id": 2, "twice": 4}


@pytest.mark.anyio
async def test_concurrency_bounds_all_batches_of_an_actor(
    aws_env: dict[str, str], local: LocalEndpoint, gate: Any
) -> None:
    """Three batches at once share the actor's 3 slots: never more than 3 in flight."""
    name = gate()
    the_mapper = mapper(endpoint_name="scripted", concurrency=3)
    payload = json.dumps({"gate": name, "output": "ok"})
    before = local.stats("scripted")
    outs: list[Any] = []

    async def one() -> None:
        outs.append(await the_mapper(pd.DataFrame({"data": [payload] * 4})))

    try:
        async with anyio.create_task_group() as tasks:
            for _ in range(3):
                tasks.start_soon(one)
            await local.wait_for_stats(
                "scripted", lambda s: s.accepted >= before.accepted + 3, timeout=60
            )
            # Every slot is taken by a gated inference: no fourth can be submitted until one
            # finishes, so the count of accepted ones cannot have grown past 3.
            held = local.stats("scripted").accepted - before.accepted
            GATES[name].open()
    finally:
        await the_mapper.aclose()
    assert held == 3
    assert [json.loads(r) for out in outs for r in out["result"]] == ["ok"] * 12


@pytest.mark.anyio
async def test_close_from_another_thread_closes_the_predictor(aws_env: dict[str, str]) -> None:
    closed: list[ActorSummary] = []
    the_mapper = mapper(on_close=closed.append)
    await the_mapper(pd.DataFrame({"data": [spec(0), spec(13)]}))
    assert the_mapper.predictor.engine_stats is not None  # open
    await anyio.to_thread.run_sync(the_mapper.close)  # as Ray's shutdown does, off the loop
    assert the_mapper.predictor.engine_stats is None  # its clients are closed
    assert closed == [ActorSummary("scripted", batches=1, rows=2, failed=1)]
    with pytest.raises(RuntimeError, match="closed"):
        await the_mapper(pd.DataFrame({"data": [spec(0)]}))
    the_mapper.close()  # a second close is a no-op
    assert len(closed) == 1


@pytest.mark.anyio
async def test_retry_and_cleanup_reach_map(
    aws_env: dict[str, str], local: LocalEndpoint, s3: Any
) -> None:
    """A failing row is tried ``attempts`` times (new inferences); uploaded inputs are deleted."""
    the_mapper = mapper(inline=False, retry=RetryPolicy(attempts=2, backoff=0.01), cleanup="inputs")
    rows = [spec(i) for i in range(20)]  # row 13 fails every time
    before = local.stats("scripted").accepted
    inputs_before = await _inputs(s3)
    try:
        out = await the_mapper(pd.DataFrame({"data": rows}))
    finally:
        await the_mapper.aclose()
    assert local.stats("scripted").accepted - before == 21  # 19 once, the failing one twice
    assert out["error_type"][13] == "AsyncInferenceModelError"
    assert out["result"].isna().sum() == 1
    assert await _inputs(s3) == inputs_before  # the 21 uploads were deleted once read


async def _inputs(s3: Any) -> set[str]:
    """The input objects in the test bucket (where the mapper uploads)."""
    keys: set[str] = set()
    more: dict[str, str] = {}
    while True:
        page = await s3.list_objects_v2(Bucket=BUCKET, Prefix="async-endpoint-inputs/", **more)
        keys |= {item["Key"] for item in page.get("Contents", [])}
        if not page.get("IsTruncated"):
            return keys
        more = {"ContinuationToken": page["NextContinuationToken"]}


def test_cluster_figures_are_divided_among_actors() -> None:
    the_mapper = mapper(
        num_actors=4, cluster_s3_requests_per_second=100, cluster_max_concurrency=64
    )
    assert the_mapper.predictor._requests_per_second == 25
    assert the_mapper.predictor._max_concurrency == 16


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_concurrency": 8}, TypeError, "cluster_max_concurrency"),
        ({"s3_requests_per_second": 8}, TypeError, "cluster_s3_requests_per_second"),
        ({"session": object()}, TypeError, "endpoint_urls"),
        ({"bogus": 1}, TypeError, "unexpected argument 'bogus'"),
        ({"num_actors": 4, "cluster_max_concurrency": 2}, ValueError, "at least num_actors"),
        ({"result_format": "csv"}, ValueError, "'json' or 'raw'"),
        ({"endpoint_urls": {"s3": "localhost:9000"}}, ValueError, "http:// or https://"),
        ({"concurrency": 0}, ValueError, "concurrency"),
        ({"retry": 2}, TypeError, "RetryPolicy"),
        ({"cleanup": "everything"}, ValueError, "'inputs' or 'all'"),
    ],
)
def test_bad_arguments_are_refused_at_construction(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        mapper(**kwargs)


@pytest.mark.anyio
async def test_an_empty_batch_gains_empty_columns(aws_env: dict[str, str]) -> None:
    the_mapper = mapper()
    try:
        out = await the_mapper(pa.table({"data": pa.array([], pa.string())}))
    finally:
        await the_mapper.aclose()
    assert out.num_rows == 0
    assert out.column_names == ["data", *OUTCOME_COLUMNS]


@pytest.mark.anyio
async def test_a_missing_column_names_the_columns(aws_env: dict[str, str]) -> None:
    the_mapper = mapper(column="payload")
    with pytest.raises(KeyError, match=r"no column 'payload'.*\['data'\]"):
        await the_mapper(pd.DataFrame({"data": [spec(0)]}))
    await the_mapper.aclose()


def test_importing_aiosagemaker_ray_imports_no_ray() -> None:
    code = (
        "import sys, aiosagemaker, aiosagemaker.ray; "
        "heavy = [m for m in ('ray', 'pyarrow', 'pandas', 'numpy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- on a local Ray cluster -------------------------------------------------------------------


@pytest.fixture
def ray_cluster(local: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ray on loopback with 2 CPUs; actors get only the emulator's dummy credentials."""
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    credentials = {k: v for k, v in local.env.items() if k.startswith("AWS_") and "KEY" in k}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=200 * 1024 * 1024,
        runtime_env={"env_vars": {**credentials, "AWS_CONFIG_FILE": os.devnull}},
        logging_level="WARNING",
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    # on_close is a function of this module: ship it by value (the actors cannot import it)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()


def test_2000_rows_on_two_actors_each_once_failures_as_rows(
    ray_cluster: None, local: LocalEndpoint, tmp_path: Path
) -> None:
    n = 2000
    planted = {i for i in range(n) if i % 97 == 13} | {500}
    items = [{"id": i, "data": None if i == 500 else spec(i)} for i in range(n)]
    urls = {"s3": local.s3_url, "sagemaker-runtime": local.runtime_url}
    dataset = ray.data.from_items(items).map_batches(
        AsyncInferenceMapper,
        fn_constructor_kwargs={
            "endpoint_name": "scripted",
            "serializer": IdentitySerializer("application/json"),
            "deserializer": JSONDeserializer(),
            "waiter_config": WAITER,
            "default_bucket": BUCKET,
            "inline": "auto",
            "region_name": local.region,
            "endpoint_urls": urls,
            "num_actors": 2,
            "concurrency": 64,
            "on_close": functools.partial(write_summary, str(tmp_path)),
        },
        compute=ray.data.ActorPoolStrategy(size=2),
        batch_size=250,
    )
    rows = dataset.take_all()

    ids = sorted(row["id"] for row in rows)
    assert ids == list(range(n))  # every row, exactly once
    failed = {row["id"] for row in rows if row["error_type"] is not None}
    assert failed == planted
    for row in rows:
        i = row["id"]
        if i == 500:
            assert row["error_type"] == "ValueError"
        elif i in planted:
            assert row["error_type"] == "AsyncInferenceModelError", row
            assert f"planted failure {i}" in row["error_message"]
            assert row["result"] is None
        else:
            assert json.loads(row["result"]) == {"id": i, "twice": 2 * i}, row
        if i != 500:
            assert row["output_location"].startswith("s3://")
    assert len({row["inference_id"] for row in rows if row["id"] != 500}) == n - 1

    # Each actor closes its predictor when Ray ends it (gracefully, after the last batch).
    deadline = time.monotonic() + 120
    while len(summaries := sorted(tmp_path.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for a condition, not waiting for a duration
    records = [json.loads(path.read_text()) for path in summaries]
    assert len(records) == 2, records
    assert len({record["pid"] for record in records}) == 2
    assert sum(record["rows"] for record in records) == n
    assert sum(record["failed"] for record in records) == len(planted)
    assert all(record["endpoint_name"] == "scripted" for record in records)


def test_the_example_runs() -> None:
    done = run_example("ray_batch.py", "--rows", "100", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "rows: 100, ok: 99, failed: 1" in done.stdout
    assert "row 3: {'sum': 12, 'mean': 4.0, 'count': 3}" in done.stdout
    assert "row 7 failed: AsyncInferenceModelError" in done.stdout
    assert "must be a non-empty list of numbers" in done.stdout
