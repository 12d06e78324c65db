"""``aiosagemaker batch``: a durable, resumable batch over a JSON-lines file.

Each non-blank input line is one JSON payload; its index is its line number minus one (blank
lines are skipped and keep their numbers). The state file (:mod:`._state`), locked for the
run and tied to the input's size and SHA-256, records every submission before and after
InvokeEndpointAsync, so running the same command again after a crash, ``kill -9`` or Ctrl-C
resumes: nothing accepted is submitted again, every accepted inference is waited for from its
recorded locations, and OUT.jsonl (rewritten atomically from the state file at the end, never
before the state is validated) holds every input exactly once, in input order.

A submission whose response was lost (the process died during the call, or the connection
broke after the request was sent) may have been accepted. It is never submitted twice by
default: where botocore lets the client choose the output location (``Filename`` and
``S3OutputPathExtension``), the job waits ``--uncertain-wait`` seconds for a result there;
otherwise, or when none appears, its line is a ``SubmissionUncertainError``. With
``--resubmit-uncertain`` such inputs are submitted again (a duplicate inference is possible),
also after the batch finished; ``--retry-failed`` submits again the inputs whose outcome is a
definite error. Each resubmission has a new inference id.

``--retry N`` retries failed inferences within the run (a :class:`RetryPolicy`: model errors,
or those matching ``--retry-on``), each retry a new inference id kept in the state file's
``attempts`` table; ``--max-failure-ratio`` is ``map``'s; ``--cleanup`` deletes what the
batch uploaded (and, with ``all``, the result objects once their content is recorded).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import anyio
from botocore.exceptions import BotoCoreError

from .._batch import BatchOutcome, BatchRun, delete_quietly, result_objects
from .._config import DEFAULT_WAITER_CONFIG, WaiterConfig
from .._exceptions import BatchFailureRatioExceeded, PollingTimeoutError, SubmissionUncertainError
from .._limits import FILENAME_MAX
from .._naming import OutputNaming, naming_key
from .._policies import MIN_FINISHED_FOR_RATIO, RetryPolicy
from .._predictor import AsyncPredictor
from .._response import AsyncInferenceResponse
from .._s3 import S3Uri
from ..deserializers import BytesDeserializer
from ..serializers import IdentitySerializer
from ._errors import UserError
from ._input import READ_HINT, InputScan, scan_input
from ._lock import state_lock
from ._output import Progress, write_atomically
from ._state import BatchState, Row, discard_state

__all__ = [
    "MIN_OUTCOMES_FOR_RATIO",
    "BatchJob",
    "encode_result",
    "retry_policy",
]

_UNCERTAIN = "SubmissionUncertainError"
MIN_OUTCOMES_FOR_RATIO = MIN_FINISHED_FOR_RATIO
"""``max_failure_ratio`` is checked once this run has at least this many outcomes."""


def retry_policy(retries: int, patterns: list[str] | None = None) -> RetryPolicy | None:
    """``--retry N`` / ``--retry-on``: N more tries on model errors (those matching)."""
    if retries == 0:
        return None
    return RetryPolicy(attempts=retries + 1, model_errors=patterns or True)


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
    retry_failed: bool = False
    force_new: bool = False
    inline: bool | Literal["auto"] = "auto"
    session: Any = None
    progress: bool = True
    max_failure_ratio: float | None = None
    retry: RetryPolicy | None = None
    cleanup: Literal["inputs", "all"] | None = None
    freeze_gc: bool = False
    """``gc.freeze()`` once the predictor is open (its clients and service models then stay
    out of every garbage collection of the run); undone when the run ends."""

    ok: int = 0
    failed: int = 0
    first_error: str | None = None
    stopped: str | None = None
    """Why submitting stopped early (``max_failure_ratio``), else None."""

    async def run(self) -> int:
        """Run or resume the batch; return the number of inputs now done.

        Raises :class:`UserError` before anything is submitted or written when the paths,
        the input or the state file are not usable (the output is then untouched).
        """
        output, scan = await anyio.to_thread.run_sync(self._prepare)
        with state_lock(self.state_path):
            if self.force_new:
                await anyio.to_thread.run_sync(discard_state, self.state_path)
            state = BatchState(self.state_path)
            await state.open()
            try:
                meta = await self._validate(state, scan)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await state.close()
                raise
            try:
                return await self._run(state, meta, scan)
            finally:
                with anyio.CancelScope(shield=True):
                    try:
                        lines = await state.lines()
                        await anyio.to_thread.run_sync(write_atomically, output, lines)
                    finally:
                        await state.close()

    def _prepare(self) -> tuple[Path, InputScan]:
        """Check the paths (output: resolved) and scan the input, touching nothing."""
        source = self.input_path.resolve()
        output = self.output_path.resolve()
        state = self.state_path.resolve()
        if not source.is_file():
            raise UserError(f"no such input file: {self.input_path}")
        if output == source:
            raise UserError(f"--output {self.output_path} is the input file; choose another")
        if state in (source, output):
            raise UserError(f"--state {self.state_path} is the input or the output; choose another")
        for flag, path in (("--output", output), ("--state", state)):
            if path.exists() and not path.is_file():
                raise UserError(f"{flag} {path} exists and is not a regular file")
            if not path.parent.is_dir():
                raise UserError(f"the directory of {flag} {path} does not exist")
        return output, scan_input(self.input_path)

    async def _validate(self, state: BatchState, scan: InputScan) -> dict[str, Any]:
        """The state's meta, once it is known to belong to this batch and input."""
        meta = await state.meta()
        identity = {"endpoint": self.endpoint, "input": str(self.input_path.resolve())}
        if meta and meta.get("identity") != identity:
            other = meta.get("identity") or {}
            raise UserError(
                f"the state file {self.state_path} belongs to another batch (endpoint "
                f"{other.get('endpoint')!r}, input {other.get('input')}); pass another --state "
                "(or --output), or --force-new to discard it and start this batch over"
            )
        recorded = meta.get("input_file")
        if recorded is not None and recorded != scan.identity:
            raise UserError(
                f"the input {self.input_path} changed since the state file {self.state_path} "
                f"was written ({recorded['size']} bytes then, {scan.size} now); restore it, or "
                "pass --force-new to start the batch over (every input is then submitted again)"
            )
        if meta and recorded is None and scan.blank:
            raise UserError(
                f"the state file {self.state_path} was written by an older aiosagemaker that "
                "numbered inputs without the blank lines; finish it with that version, remove "
                "the blank lines, or pass --force-new to start the batch over"
            )
        if not meta:
            await state.set_meta("identity", identity)
            await state.set_meta("batch_id", secrets.token_hex(4))
        if recorded is None:
            await state.set_meta("input_file", scan.identity)
        return await state.meta()

    async def _run(self, state: BatchState, meta: dict[str, Any], scan: InputScan) -> int:
        self._state = state
        self._meta = meta
        self._naming = OutputNaming()  # the endpoint's, kept as meta "output_base" to resume
        if meta.get("output_base"):
            self._naming.restore(meta["output_base"])
        rows = await state.rows()
        redo: set[int] = set()
        kept = 0
        for idx, row in rows.items():
            kind = _error_type(row.line) if row.state == "done" else _UNCERTAIN
            if self._redo(row.state, kind):
                redo.add(idx)
            elif row.state == "done":
                kept += 1
                self._count(kind, row.line)
        self._uncertain: set[int] = set()
        self._index_of: dict[int, int] = {}
        self._doomed: list[S3Uri] = []
        progress = Progress(scan.payloads - kept) if self.progress else None
        async with (
            AsyncPredictor(
                self.endpoint,
                session=self.session,
                serializer=IdentitySerializer(self.content_type),
                deserializer=BytesDeserializer(accept=self.accept),
                default_bucket=self.bucket,
                waiter_config=self.waiter_config,
                inline=self.inline,
            ) as predictor,
            _frozen_gc(self.freeze_gc),
        ):
            self._predictor = predictor
            self._choose_locations = predictor._supports("Filename") and predictor._supports(
                "S3OutputPathExtension"
            )
            run = BatchRun(
                predictor,
                self._work(rows, redo),
                concurrency=self.concurrency,
                waiter_config=None,
                progress=progress or False,
                ordered=False,
                initial_args=None,
                submit=self._submit,
                retry=self.retry,
                max_failure_ratio=self.max_failure_ratio,
                cleanup=self.cleanup,
                may_retry=self._may_retry,
                keep_final_results=True,  # deleted once their lines are committed
            )
            try:
                async with run:
                    async for outcome in run:
                        await self._record(outcome)
                await self._delete_results()
            except BatchFailureRatioExceeded as error:
                self.stopped = (
                    f"{error.failed} of the {error.done} outcomes of this run failed "
                    f"(> --max-failure-ratio {error.limit:g}); no more inputs were submitted"
                )
                await self._delete_results()
            finally:
                if progress is not None:
                    progress.close()
        return self.ok + self.failed

    def _redo(self, state: str, error_type: str | None) -> bool:
        """Whether a recorded input is submitted again (asked for with the flags)."""
        if state == "accepted" or error_type is None:
            return False
        if error_type == _UNCERTAIN:
            return self.resubmit_uncertain
        return self.retry_failed and state == "done"

    def _count(self, error_type: str | None, line: str | None) -> None:
        if error_type is None:
            self.ok += 1
            return
        self.failed += 1
        if self.first_error is None and line:
            error = json.loads(line)["error"]
            self.first_error = f"{error['type']}: {error['message']}"

    # -- work ------------------------------------------------------------------------------

    async def _work(
        self, rows: dict[int, Row], redo: set[int]
    ) -> AsyncIterator[tuple[int, Row | str, str]]:
        """Each input not done yet: its recorded row (to wait for), or its line (to submit);
        and its line (what a retry submits)."""
        idx = 0
        async with await anyio.open_file(self.input_path, "rb") as file:
            # about 1 MiB of lines per worker-thread call, not one call per line
            while chunk := await anyio.to_thread.run_sync(file.wrapped.readlines, READ_HINT):
                for raw in chunk:
                    if raw.strip():
                        row = rows.get(idx)
                        text = raw.decode("utf-8").strip()
                        if row is None or idx in redo:
                            yield idx, text, text
                        elif row.state != "done":
                            yield idx, row, text
                    idx += 1

    async def _submit(
        self, batch_index: int, item: tuple[int, Row | str, str]
    ) -> AsyncInferenceResponse:
        idx, what, text = item
        retrying = batch_index in self._index_of  # a --retry: always a new inference
        self._index_of[batch_index] = idx
        if retrying:
            what = text
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
        if self._choose_locations:
            extension = f"aiosagemaker-batch-{self._meta['batch_id']}/{idx // 1000:x}"
            initial_args = {
                "S3OutputPathExtension": extension,
                "Filename": inference_id[:FILENAME_MAX],
            }
        key = naming_key(initial_args)
        # Shielded: Ctrl-C lets a submission under way finish and be recorded, so that a
        # clean stop leaves no submission whose outcome is unknown.
        with anyio.CancelScope(shield=True):
            await self._state.submitting(idx, inference_id, None if key is None else f"/{key}")
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
        if key is not None and self._naming.base is None:
            self._naming.learn(key, response.output_path, response.failure_path)
            if self._naming.base is not None:
                await self._state.set_meta("output_base", self._naming.base)
        return response

    def _may_retry(self, batch_index: int, error: BaseException) -> bool:
        """Never retry an input whose submission's outcome is unknown (it may be running)."""
        return self._index_of.get(batch_index) not in self._uncertain and not isinstance(
            error, (_Uncertain, _BadLine)
        )

    def _resume(self, idx: int, row: Row) -> AsyncInferenceResponse:
        if row.state == "accepted":
            assert row.output_location is not None
            return AsyncInferenceResponse(
                self._predictor, row.output_location, row.failure_location, row.inference_id
            )
        self._uncertain.add(idx)
        output_path = None
        if row.expected_output is not None:  # "/<key>", written before the request was sent
            output_path, _ = self._naming.predict(row.expected_output.lstrip("/"))
        if output_path is None:
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
        return AsyncInferenceResponse(binding, output_path, None, row.inference_id)

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
            kind = None
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
        text = json.dumps(line, ensure_ascii=False)
        self._count(kind, text)
        await self._state.done(idx, text)
        if self.cleanup == "all":
            self._doomed += result_objects(outcome)
            if len(self._doomed) >= self.concurrency:
                await self._delete_results()

    async def _delete_results(self) -> None:
        """``--cleanup all``: delete the result objects whose lines are committed."""
        doomed, self._doomed = self._doomed, []
        transport = self._predictor._transport
        if not doomed or transport is None:
            return
        await self._state.flush()  # deleted only once their content is durable
        for uri in doomed:
            await delete_quietly(transport, uri)


@contextlib.asynccontextmanager
async def _frozen_gc(freeze: bool) -> AsyncIterator[None]:
    """Everything alive now is left out of garbage collections until the block ends."""
    if not freeze:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _error_type(line: str | None) -> str | None:
    """The error type of a recorded outcome line (None: a result)."""
    if not line:
        return None
    error = json.loads(line).get("error")
    return None if error is None else str(error["type"])
