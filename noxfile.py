"""Developer tasks: ``nox -s demo``, ``tests``, ``tests-transport``, ``lint typecheck``,
``bench``, ``soak``."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "demo"]
nox.options.reuse_existing_virtualenvs = True

# examples/fastapi_app.py under real uvicorn, driven by httpx
APP_DEPS = ["fastapi>=0.110", "uvicorn>=0.29", "httpx>=0.27"]
# examples/quickstart.ipynb executed by nbclient (ipywidgets: tqdm.auto's widget)
NOTEBOOK_DEPS = ["nbclient>=0.10", "nbformat>=5.10", "ipykernel>=6.29", "ipywidgets>=8.1"]
TEST_DEPS = [
    "pytest>=8",
    "anyio>=4.4",
    "awscli",
    "scipy",
    "tqdm>=4.66",
    "opentelemetry-sdk>=1.20",
    "blockbuster>=1.5.23",
    *APP_DEPS,
    *NOTEBOOK_DEPS,
]

# The two aiobotocore lines we support: aioboto3 15.x pins aiobotocore 2.25 (botocore 1.40);
# aiobotocore 3.x brings botocore 1.43 (inline Body, Filename, S3OutputPathExtension).
LINES = {
    "aiobotocore3": [".[local,numpy,pandas]", "aiobotocore>=3.9.1,<4"],
    "aioboto3": [".[local,numpy,pandas,aioboto3]", "aioboto3>=15,<16"],
}


@nox.session
@nox.parametrize("line", list(LINES))
def tests(session: nox.Session, line: str) -> None:
    """Run the test suite against real local servers (moto and the emulator)."""
    session.install(*LINES[line], *TEST_DEPS)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("pytest", *session.posargs)


# The test files whose requests go through a transport (S3 and the SageMaker runtime):
# ``tests-transport`` runs them again on the built-in transport that is not the default.
TRANSPORT_TESTS = [
    "tests/test_predictor.py",
    "tests/test_response.py",
    "tests/test_inline.py",
    "tests/test_hot_path.py",
    "tests/test_read_deadlines.py",
    "tests/test_s3_options.py",
    "tests/test_sessions.py",
    "tests/test_submission.py",
    "tests/test_concurrency.py",
    "tests/test_batch.py",
    "tests/test_batch_policies.py",
    "tests/test_batch_state.py",
    "tests/test_lifecycle.py",
    "tests/test_notifications.py",
    "tests/test_telemetry.py",
    "tests/test_tokens.py",
    "tests/test_lean_transport.py",
]
OTHER_TRANSPORT = "botocore"
"""The built-in transport that is not the default (``AIOSAGEMAKER_TRANSPORT``)."""


@nox.session(name="tests-transport")
@nox.parametrize("line", list(LINES))
def tests_transport(session: nox.Session, line: str) -> None:
    """The S3 and runtime tests again, on the transport that is not the default."""
    session.install(*LINES[line], *TEST_DEPS)
    session.run(
        "pytest",
        *(session.posargs or TRANSPORT_TESTS),
        env={"AIOSAGEMAKER_TRANSPORT": OTHER_TRANSPORT},
    )


@nox.session
def ray(session: nox.Session) -> None:
    """aiosagemaker.ray on a local Ray cluster (not part of ``tests``: Ray is a large install)."""
    session.install(".[local,ray]", "aiobotocore>=3.9.1,<4", *TEST_DEPS)
    session.run("pytest", "tests/test_ray.py", "tests/test_docs.py", "-k", "ray", *session.posargs)


@nox.session(name="bench-ray")
def bench_ray(session: nox.Session) -> None:
    """Ray Data on 1 and 2 actors beside single-process map(): writes benchmarks/ray.json."""
    session.install(".[local,ray]", "aiobotocore>=3.9.1,<4")
    session.run("python", "benchmarks/bench_ray.py", "--output", "benchmarks/ray.json")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src, tests, examples and this file."""
    session.install(
        ".[local,numpy,pandas,otel]",
        "mypy==2.4.1",
        "pytest>=8",
        "anyio>=4.4",
        "nox",
        "opentelemetry-sdk>=1.20",
        *APP_DEPS,
        *NOTEBOOK_DEPS,
        "blockbuster>=1.5.23",
    )
    session.run("mypy", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The quickstart example against the embedded local emulator (no AWS account needed)."""
    session.install(".[local]")
    session.run("python", "examples/quickstart.py", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Soak under faults (not part of ``tests``): writes benchmarks/soak.json.

    ``nox -s soak -- --n 1000 --outage 5`` passes options to ``benchmarks/soak.py``.
    """
    session.install(".[local]")
    session.run(
        "python", "benchmarks/soak.py", "--output", "benchmarks/soak.json", *session.posargs
    )


# The official SDK runs in its own environment (never a dependency of the library); this set
# installs together (the newest SDK 2.x needs a botocore newer than aioboto3 15.x allows).
SDK_BENCH_DEPS = ["sagemaker==2.254.1", "boto3==1.40.61", "botocore==1.40.61"]
SDK_BENCH_VENV = Path(".bench/sdk-venv")
LINE_140_VENV = Path(".bench/aioboto3-venv")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (not part of the tests); results are written as JSON under benchmarks/.

    ``nox -s bench -- --n 1 100`` passes options to ``benchmarks/bench_clients.py``.
    """
    session.install(".[local]", "matplotlib")
    if Path("benchmarks/bench_emulator.py").exists():
        session.run(
            "python", "benchmarks/bench_emulator.py", "--output", "benchmarks/emulator.json"
        )
    sdk_python = SDK_BENCH_VENV / "bin" / "python"
    if not sdk_python.exists():
        session.run("python", "-m", "venv", str(SDK_BENCH_VENV))
    session.run(str(sdk_python), "-m", "pip", "install", "-q", *SDK_BENCH_DEPS, external=True)
    line_140 = LINE_140_VENV / "bin" / "python"
    if not line_140.exists():
        session.run("python", "-m", "venv", str(LINE_140_VENV))
    session.run(str(line_140), "-m", "pip", "install", "-q", *LINES["aioboto3"], external=True)
    session.run("python", "benchmarks/bench_pending.py", "--output", "benchmarks/pending.json")
    session.run(
        "python",
        "benchmarks/bench_listener.py",
        "--n",
        "2000",
        "--output",
        "benchmarks/listener.json",
    )
    session.run(
        "python",
        "benchmarks/bench_stages.py",
        "--output",
        "benchmarks/stages.json",
        "--docs",
        "docs/benchmarks.md",
    )
    session.run(
        "python",
        "benchmarks/bench_batch.py",
        "--output",
        "benchmarks/batch.json",
        "--docs",
        "docs/benchmarks.md",
    )
    session.run(
        "python",
        "benchmarks/bench_clients.py",
        "--sdk-python",
        str(sdk_python),
        "--botocore140-python",
        str(line_140),
        "--output",
        "benchmarks/results.json",
        "--docs",
        "docs/benchmarks.md",
        "--plot",
        "docs/benchmarks.png",
        *session.posargs,
    )
