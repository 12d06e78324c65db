"""Every Python and shell block of README.md and docs/*.md runs as written, against the emulator.

Each block runs as a reader would paste it, in a fresh process, with the emulator's
environment (``AWS_ENDPOINT_URL_*``, dummy credentials) and an empty working directory from
which ``examples/`` is reachable:

- ``python`` blocks in a new interpreter; top-level ``await`` is allowed, as in Jupyter or
  ``python -m asyncio`` (compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``, then run with
  ``asyncio.run``). Tracebacks name the document and its line;
- ``bash``, ``sh`` and ``shell`` blocks with ``bash -e -o pipefail``; ``console`` blocks
  likewise, running only their ``$ `` lines when they have any (the rest is output).

The endpoints the documents name (``demo``, ``my-async-endpoint``, ``my-endpoint`` with its
topics) are served by the session's emulator (tests/conftest.py). A block that cannot run as
it stands (it needs AWS, installs packages, or runs for minutes) is marked with
``<!-- fragment -->`` (optionally ``<!-- fragment: why -->``) on the line before its fence;
there must stay few of them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiosagemaker.local import LocalEndpoint

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {
    "python": "python",
    "py": "python",
    "bash": "shell",
    "sh": "shell",
    "shell": "shell",
    "console": "console",
}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
FRAGMENT = re.compile(r"^\s*<!--\s*fragment\b[^>]*-->\s*$")
MAX_FRAGMENTS = 6
BLOCK_TIMEOUT = 180

# Documents whose blocks are not run yet, with the reason.
SKIPPED_DOCUMENTS: dict[str, str] = {}
# Documents whose blocks need an optional package that the tests session does not install.
if importlib.util.find_spec("ray") is None:
    SKIPPED_DOCUMENTS["docs/ray.md"] = "needs ray (pip install '.[ray]'); nox -s ray runs it"
# Single blocks that do not run yet and live in text edited elsewhere: (document, first line of
# the block) -> why. test_pending_blocks_still_exist fails once a block here has changed.
PENDING: dict[tuple[str, str], str] = {}

RUNNER = """
import ast, asyncio, inspect, sys

path, name = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as file:
    code = compile(file.read(), name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
if code.co_flags & inspect.CO_COROUTINE:
    asyncio.run(eval(code, namespace))
else:
    exec(code, namespace)
"""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    document: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    language: str  # "python", "shell" or "console"
    code: str
    fragment: bool

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.code.splitlines() if line.strip()), "")


def blocks_of(path: Path) -> list[Block]:
    """The Python and shell blocks of a Markdown document (other fences are skipped over)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    document = path.relative_to(ROOT).as_posix()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        language = LANGUAGES.get(opening["info"].lower())
        if language is not None:
            found.append(
                Block(
                    document=document,
                    line=index + 1,
                    language=language,
                    code=textwrap.dedent("\n".join(lines[index + 1 : end])) + "\n",
                    fragment=index > 0 and FRAGMENT.match(lines[index - 1]) is not None,
                )
            )
        index = end + 1
    return found


def console_commands(code: str) -> str:
    """The commands of a console transcript: its ``$ `` lines and their continuations."""
    lines = code.splitlines()
    if not any(line.startswith("$ ") for line in lines):
        return code
    commands: list[str] = []
    continued = False
    for line in lines:
        if continued:
            commands[-1] += "\n" + line
        elif line.startswith("$ "):
            commands.append(line[2:])
        else:
            continue
        continued = line.endswith("\\")
    return "\n".join(commands) + "\n"


BLOCKS = [block for document in DOCUMENTS for block in blocks_of(document)]
RUNNABLE = [block for block in BLOCKS if not block.fragment]


def _run(block: Block, env: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    (workdir / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    if block.language == "python":
        script = workdir / "block.py"
        # Pad so that line numbers in tracebacks are the document's.
        script.write_text("\n" * block.line + block.code, encoding="utf-8")
        command = [sys.executable, "-c", RUNNER, str(script), block.document]
    else:
        code = console_commands(block.code) if block.language == "console" else block.code
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    # A session of its own, so that a block that overruns is stopped with all its children.
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(
            f"{block.id} ({block.language}) did not finish within {BLOCK_TIMEOUT} s\n"
            f"--- block ---\n{block.code}--- stdout ---\n{stdout}--- stderr ---\n{stderr}"
        )
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.mark.parametrize("block", [pytest.param(block, id=block.id) for block in RUNNABLE])
def test_block_runs(
    block: Block, aws_env: dict[str, str], local: LocalEndpoint, tmp_path: Path
) -> None:
    if block.document in SKIPPED_DOCUMENTS:
        pytest.skip(SKIPPED_DOCUMENTS[block.document])
    pending = PENDING.get((block.document, block.first_line))
    if pending is not None:
        pytest.skip(f"not runnable yet: {pending}")
    env = {k: v for k, v in os.environ.items() if k != "AIOSAGEMAKER_TOKEN_KEY"}
    # aws_env without its recording proxies: the emulator's own variables, as a reader has them.
    env.update(local.env)
    # The commands the blocks name (jupyter, aws, aiosagemaker) are those of this environment.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = _run(block, env, tmp_path)
    assert done.returncode == 0, (
        f"{block.id} ({block.language}) failed with exit status {done.returncode}\n"
        f"--- block ---\n{block.code}--- stdout ---\n{done.stdout}--- stderr ---\n{done.stderr}"
    )


def test_the_documents_have_blocks_to_run() -> None:
    """Guards the parser: the README's own examples are found and run."""
    readme = [block for block in RUNNABLE if block.document == "README.md"]
    assert sum(block.language == "python" for block in readme) >= 3, readme
    assert any(block.language == "shell" for block in readme), readme


def test_fragments_are_few() -> None:
    fragments = [block.id for block in BLOCKS if block.fragment]
    assert len(fragments) <= MAX_FRAGMENTS, (
        f"{len(fragments)} blocks are marked as fragments ({fragments}); make some of them "
        "run against the emulator instead"
    )


def test_pending_blocks_still_exist() -> None:
    """A block listed in PENDING that changed (fixed, or marked) must leave the list."""
    present = {(block.document, block.first_line) for block in RUNNABLE}
    assert [key for key in PENDING if key not in present] == []
