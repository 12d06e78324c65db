"""examples/fastapi_app.py run as a user runs it: real uvicorn, the emulator, httpx.

The server is a subprocess (``uvicorn fastapi_app:app --app-dir examples --port 0``) with the
emulator's environment; the scripted model's gates hold invocations so that "pending" is a
state the test controls, not a matter of timing.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import httpx
import pytest

from aiosagemaker import AsyncInferenceResponse, AsyncPredictor
from aiosagemaker.local import LocalEndpoint
from conftest import GATES
from helpers import until

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
START_SECONDS = 60.0
N = 200


@dataclass
class Server:
    """The example app under uvicorn: its URL, its token key and everything it logged."""

    url: str
    key: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def log_text(self) -> str:
        return "".join(self.log)


def _drain(stream: IO[str], log: list[str], port: list[int], ready: threading.Event) -> None:
    for line in stream:
        log.append(line)
        match = RUNNING.search(line)
        if match and not port:
            port.append(int(match.group(1)))
            ready.set()
    ready.set()  # end of output: the server is gone


@pytest.fixture
def server(aws_env: dict[str, str]) -> Iterator[Server]:
    key = secrets.token_urlsafe(32)
    env = {**os.environ, "SAGEMAKER_ENDPOINT": "scripted", "AIOSAGEMAKER_TOKEN_KEY": key}
    command = [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--app-dir", str(EXAMPLES)]
    command += ["--host", "127.0.0.1", "--port", "0", "--no-access-log"]
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    port: list[int] = []
    ready = threading.Event()
    assert process.stdout is not None
    reader = threading.Thread(target=_drain, args=(process.stdout, log, port, ready), daemon=True)
    reader.start()
    try:
        if not ready.wait(START_SECONDS) or not port:
            pytest.fail("uvicorn did not start:\n" + "".join(log))
        yield Server(f"http://127.0.0.1:{port[0]}", key, process, log)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
        reader.join(10)
        process.stdout.close()
    text = "".join(log)
    # Recent uvicorn re-raises the signal once it has shut down gracefully.
    assert process.returncode in (0, -signal.SIGTERM), text
    assert "Traceback" not in text and "ERROR" not in text, text
    assert "Application shutdown complete" in text, text  # the lifespan closed the predictor


def client(server: Server, **kwargs: Any) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    return httpx.AsyncClient(
        base_url=server.url, limits=limits, timeout=httpx.Timeout(180), **kwargs
    )


async def test_200_concurrent_waits_all_correct_and_health_answers_while_pending(
    server: Server, local: LocalEndpoint, gate: Callable[[], str]
) -> None:
    name = gate()
    accepted_before = local.stats("scripted").accepted
    answers: dict[int, httpx.Response] = {}

    async with client(server) as http:

        async def predict(i: int) -> None:
            payload = {"gate": name, "output": {"i": i}}
            answers[i] = await http.post("/predict", params={"timeout": 150}, json=payload)

        async with anyio.create_task_group() as tasks:
            for i in range(N):
                tasks.start_soon(predict, i)
            # Every request has been submitted: the emulator holds all 200 at the gate.
            await until(
                lambda: bool(answers) or local.stats("scripted").accepted - accepted_before >= N,
                120,
            )
            assert _summary(answers) == {}, "requests came back while their inference was held"
            health = [await http.get("/health") for _ in range(20)]
            assert [(r.status_code, r.json()) for r in health] == [(200, {"status": "ok"})] * 20
            assert _summary(answers) == {}, "requests came back while their inference was held"
            GATES[name].open()

    assert sorted(answers) == list(range(N))
    wrong = {
        i: (answer.status_code, answer.text)
        for i, answer in answers.items()
        if answer.status_code != 200 or answer.json()["result"] != {"i": i}
    }
    assert wrong == {}, f"{len(wrong)} of {N} answers are wrong"
    assert len({answer.json()["inference_id"] for answer in answers.values()}) == N


def _summary(answers: dict[int, httpx.Response]) -> dict[int, tuple[int, str]]:
    return {i: (answer.status_code, answer.text[:200]) for i, answer in answers.items()}


async def test_submit_then_poll_with_signed_tokens(server: Server, gate: Callable[[], str]) -> None:
    name = gate()
    async with client(server) as http:
        submitted = [
            await http.post("/inferences", json={"gate": name, "output": {"i": i}})
            for i in range(5)
        ]
        tokens = []
        for answer in submitted:
            assert answer.status_code == 202, answer.text
            token = answer.json()["token"]
            assert answer.headers["location"] == f"/inferences/{token}"
            tokens.append(token)

        for answer, token in zip(submitted, tokens, strict=True):
            polled = await http.get(f"/inferences/{token}")
            assert polled.status_code == 202, polled.text
            assert polled.json() == {
                "status": "InProgress",
                "inference_id": answer.json()["inference_id"],
            }

        GATES[name].open()
        for i, token in enumerate(tokens):
            for _ in range(2):  # asking again gives the same answer
                polled = await http.get(f"/inferences/{token}", params={"wait": 20})
                assert polled.status_code == 200, polled.text
                assert polled.json() == {
                    "status": "Completed",
                    "inference_id": submitted[i].json()["inference_id"],
                    "result": {"i": i},
                }


async def test_model_failure_is_502_and_timeout_504(
    server: Server, gate: Callable[[], str]
) -> None:
    async with client(server) as http:
        failed = await http.post("/predict", json={"fail": "input has no rows"})
        assert failed.status_code == 502, failed.text
        assert failed.json()["error"] == "model_error"
        assert "input has no rows" in failed.json()["message"]
        assert failed.json()["inference_id"]

        submitted = await http.post("/inferences", json={"fail": "bad pixels"})
        polled = await http.get(f"/inferences/{submitted.json()['token']}", params={"wait": 20})
        assert polled.status_code == 502, polled.text
        assert "bad pixels" in polled.json()["message"]

        late = await http.post("/predict", params={"timeout": 0.5}, json={"gate": gate()})
        assert late.status_code == 504, late.text
        assert late.json()["error"] == "timeout"
        assert late.json()["inference_id"]
        assert "s3://" not in late.text  # the answer does not name the bucket


def _tampered(token: str, **changes: str) -> str:
    """The token with fields changed and its signature kept (what an attacker can do)."""
    prefix, body, mac = token.split(".")
    state = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    state.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
    return f"{prefix}.{forged}.{mac}"


async def test_bad_tokens_are_400(server: Server) -> None:
    async with client(server) as http:
        submitted = await http.post("/inferences", json={"output": 1})
        token = submitted.json()["token"]
        assert (await http.get(f"/inferences/{token}", params={"wait": 20})).status_code == 200

        other = AsyncPredictor("another-endpoint")
        elsewhere = AsyncInferenceResponse(other, "s3://other-bucket/secret.out", None, "x")
        bad = {
            "garbage": "not-a-token",
            "edited output_path": _tampered(token, output_path="s3://other-bucket/secret.out"),
            "signed with another key": elsewhere.continuation_token(key=secrets.token_bytes(32)),
            "unsigned": elsewhere.continuation_token(key=None),
            "another endpoint": elsewhere.continuation_token(key=server.key),
            # parsed before any check, this one raised RecursionError: a 500
            "nested JSON": base64.urlsafe_b64encode(b"[" * 2048 + b"]" * 2048).decode(),
            "nested JSON, signed form": "v2."
            + base64.urlsafe_b64encode(b"[" * 2048 + b"]" * 2048).decode().rstrip("=")
            + ".AAAA",
        }
        for what, bad_token in bad.items():
            answer = await http.get(f"/inferences/{bad_token}")
            assert answer.status_code == 400, (what, answer.text)
            assert answer.json()["error"] == "invalid_token", what
