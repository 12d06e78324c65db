"""``aiosagemaker batch``: a durable, resumable batch over a JSON-lines file.

Each non-empty input line is one JSON payload; its index is its position among the non-empty
lines. The state file (:mod:`._state`) records every submission before and after
InvokeEndpointAsync, so running the same command again after a crash, ``kill -9`` or Ctrl-C
resumes: nothing accepted is submitted again, every accepted inference is waited for from its
recorded locations, and OUT.jsonl (rewritten atomically from the state file at the end) holds
every input exactly once, in input order.

A submission whose response was lost (the process died during the call, or the connection
broke after the request was sent) may have been accepted. It is never submitted twice by
default: where botocore lets the client choose the output location (``Filename`` and
``S3OutputPathExtension``), the job waits ``--uncertain-wait`` seconds for a result there;
otherwise, or when none appears, its line is a ``SubmissionUncertainError``. With
``--resubmit-uncertain`` such inputs are submitted again (a duplicate inference is possible).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from botocore.exceptions import BotoCoreError

from .._batch import BatchOutcome, BatchProgress, BatchRun
from .._config import DEFAULT_WAITER_CONFIG, WaiterConfig
from .._exceptions import PollingTimeoutError, SubmissionUncertainError
from .._limits import FILENAME_MAX
from .._predictor import AsyncPredictor
from .._response import AsyncInferenceResponse
from ..deserializers import BytesDeserializer
from ..serializers import IdentitySerializer
from ._state import BatchState, Row

__all__ = ["BatchJob", "encode_result"]

_UNCERTAIN = "SubmissionUncertainError"
_READ_HINT = 1 << 20


class _Uncertain(Exception):
    """Internal: the submission's outcome cannot be known."""


class _BadLine(ValueError):
    """Internal: an input line is not JSON."""


def encode_result(body: bytes) -> Any:
    """A result as JSON if it parses, else as text (bytes that are not UTF-8: base64)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        import base64

        return {"base64": base64.b64encode(body).decode()}


@dataclasses.dataclass
class BatchJob:
    """One ``aiosagemaker batch`` run (see the module docstring)."""

    endpoint: str
    input_path: Path
    output_path: Path
    state_path: Path
    concurrency: int = 64
    content_type: str = "application/json"
    accept: str = "application/json"
    bucket: str | None = None
    waiter_config: WaiterConfig = DEFAULT_WAITER_CONFIG
    uncertain_wait: float = 300.0
    resubmit_uncertain: bool = False
    progress: bool = True

    ok: int = 0
    failed: int = 0

    async def run(self) -> int:
        """Run or resume the batch; return the number of inputs now done."""
        state = BatchState(self.state_path)
        await state.open()
        try:
            return await self._run(state)
        finally:
            with anyio.CancelScope(shield=True):
                await self._write_output(state)
                await state.close()

    async def _run(self, state: BatchState) -> int:
        meta = await state.meta()
        identity = {"endpoint": self.endpoint, "input": str(self.input_path.resolve())}
        if meta.get("identity", identity) != identity:
            raise ValueError(
                f"the state file {self.state_path} belongs to another batch "
                f"({meta['identity']}); pass another --state for this one"
            )
        if not meta:
            await state.set_meta("identity", identity)
            await state.set_meta("batch_id", secrets.token_hex(4))
            meta = await state.meta()
        self._state = state
        self._meta = meta
        rows = await state.rows()
        finished = [json.loads(r.line) for r in rows.values() if r.state == "done" and r.line]
        self.failed = sum(1 for line in finished if "error" in line)
        self.ok = len(finished) - self.failed
        self._uncertain: set[int] = set()
        self._index_of: dict[int, int] = {}
        serializer = IdentitySerializer(self.content_type)
        async with AsyncPredictor(
            self.endpoint,
            serializer=serializer,
            deserializer=BytesDeserializer(accept=self.accept),
            default_bucket=self.bucket,
            waiter_config=self.waiter_config,
            inline="auto",
        ) as predictor:
            self._predictor = predictor
            self._choose_locations = predictor._supports("Filename") and predictor._supports(
                "S3OutputPathExtension"
            )
            run = BatchRun(
                predictor,
                self._work(rows),
                concurrency=self.concurrency,
                waiter_config=None,
                progress=self._progress_display(),
                ordered=False,
                initial_args=None,
                submit=self._submit,
            )
            async with run:
                async for outcome in run:
                    await self._record(outcome)
        return self.ok + self.failed

    def _progress_display(self) -> Any:
        if not self.progress:
            return False
        if importlib.util.find_spec("tqdm") is None:
            return self._print_progress
        return True

    def _print_progress(self, counts: BatchProgress) -> None:
        if counts.done % 100 == 0 and counts.done:
            total = "?" if counts.total is None else counts.total
            sys.stderr.write(f"{counts.done}/{total} done, {counts.failed} failed\n")

    # -- work ------------------------------------------------------------------------------

    async def _work(self, rows: dict[int, Row]) -> AsyncIterator[tuple[int, Row | str]]:
        """Each input not done yet: its recorded row (to wait for), or its line (to submit)."""
        idx = 0
        async with await anyio.open_file(self.input_path, encoding="utf-8") as file:
            # about 1 MiB of lines per worker-thread call, not one call per line
            while chunk := await anyio.to_thread.run_sync(file.wrapped.readlines, _READ_HINT):
                for raw_line in chunk:
                    line = raw_line.strip()
                    if not line:
                        continue
                    row = rows.get(idx)
                    if row is None or (row.state == "submitting" and self.resubmit_uncertain):
                        yield idx, line
                    elif row.state != "done":
                        yield idx, row
                    idx += 1

    async def _submit(
        self, batch_index: int, item: tuple[int, Row | str]
    ) -> AsyncInferenceResponse:
        idx, what = item
        self._index_of[batch_index] = idx
        if isinstance(what, Row):
            return self._resume(idx, what)
        try:
            json.loads(what)
        except ValueError as error:
            raise _BadLine(f"input line {idx + 1} is not JSON: {error}") from None
        return await self._invoke(idx, what.encode("utf-8"))

    async def _invoke(self, idx: int, data: bytes) -> AsyncInferenceResponse:
        inference_id = uuid.uuid4().hex
        initial_args: dict[str, Any] = {}
        suffix = None
        if self._choose_locations:
            extension = f"aiosagemaker-batch-{self._meta['batch_id']}/{idx // 1000:x}"
            filename = inference_id[:FILENAME_MAX]
            initial_args = {"S3OutputPathExtension": extension, "Filename": filename}
            suffix = f"/{extension}/{filename}"
        # Shielded: Ctrl-C lets a submission under way finish and be recorded, so that a
        # clean stop leaves no submission whose outcome is unknown.
        with anyio.CancelScope(shield=True):
            await self._state.submitting(idx, inference_id, suffix)
            try:
                response = await self._predictor.predict_async(
                    data, initial_args=initial_args, inference_id=inference_id
                )
            except (BotoCoreError, OSError, SubmissionUncertainError) as error:
                # sent, perhaps accepted: never resent
                self._uncertain.add(idx)
                raise _Uncertain(
                    f"the InvokeEndpointAsync response was lost ({error}); the inference may "
                    "be running. It is not submitted again (rerun with --resubmit-uncertain)"
                ) from error
            await self._state.accepted(idx, response.output_path, response.failure_path)
        if suffix and "output_base" not in self._meta and response.output_path.endswith(suffix):
            self._meta["output_base"] = response.output_path[: -len(suffix)]
            await self._state.set_meta("output_base", self._meta["output_base"])
        return response

    def _resume(self, idx: int, row: Row) -> AsyncInferenceResponse:
        if row.state == "accepted":
            assert row.output_location is not None
            return AsyncInferenceResponse(
                self._predictor, row.output_location, row.failure_location, row.inference_id
            )
        base = self._meta.get("output_base")
        self._uncertain.add(idx)
        if row.expected_output is None or base is None:
            raise _Uncertain(
                "the process stopped while submitting this input and the result location "
                "cannot be known; it is not submitted again (rerun with --resubmit-uncertain)"
            )
        binding = dataclasses.replace(
            self._predictor.response_binding,
            waiter_config=WaiterConfig(
                max_attempts=None, delay=1, backoff=1.5, max_delay=15, timeout=self.uncertain_wait
            ),
        )
        return AsyncInferenceResponse(binding, base + row.expected_output, None, row.inference_id)

    # -- results ---------------------------------------------------------------------------

    async def _record(self, outcome: BatchOutcome) -> None:
        idx = self._index_of.pop(outcome.index)
        error = outcome.exception
        response = outcome.response
        if error is None and response is not None:
            line: dict[str, Any] = {
                "index": idx,
                "inference_id": response.inference_id,
                "output_location": response.output_path,
                "result": encode_result(outcome.result),
            }
            self.ok += 1
        else:
            kind = type(error).__name__
            if idx in self._uncertain and isinstance(error, PollingTimeoutError):
                error = _Uncertain(
                    "the process stopped while submitting this input, and no result appeared "
                    f"at {error.output_path} within --uncertain-wait ({self.uncertain_wait:g} "
                    "s); it is not submitted again (rerun with --resubmit-uncertain to do so)"
                )
            if isinstance(error, _Uncertain):
                kind = _UNCERTAIN
            elif isinstance(error, _BadLine):
                kind = "ValueError"
            line = {"index": idx, "error": {"type": kind, "message": str(error)}}
            if response is not None:
                line["inference_id"] = response.inference_id
                line["output_location"] = response.output_path
            self.failed += 1
        await self._state.done(idx, json.dumps(line, ensure_ascii=False))

    async def _write_output(self, state: BatchState) -> None:
        lines = await state.lines()
        partial = self.output_path.with_name(f".{self.output_path.name}.{os.getpid()}.part")
        text = "".join(line + "\n" for line in lines)
        await anyio.Path(partial).write_text(text, encoding="utf-8")
        await anyio.Path(partial).replace(self.output_path)
