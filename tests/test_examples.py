"""The examples run as a user would run them, against the embedded local emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_quickstart_prints_a_result_and_a_model_failure() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "result: {'sum': 10, 'mean': 2.5, 'count': 4}" in done.stdout
    assert "sums: [0, 1, 3, 6, 10]" in done.stdout
    assert "Model returned error:" in done.stdout
    assert "must be a non-empty list of numbers" in done.stdout
