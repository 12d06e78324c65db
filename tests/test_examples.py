"""The examples run as a user would run them, against the embedded local emulator."""

from __future__ import annotations

from cli_helpers import run_example


def test_quickstart_prints_a_result_and_a_model_failure() -> None:
    done = run_example("quickstart.py")
    assert done.returncode == 0, done.stderr
    assert "result: {'sum': 10, 'mean': 2.5, 'count': 4}" in done.stdout
    assert "sums: [0, 1, 3, 6, 10]" in done.stdout
    assert "Model returned error:" in done.stdout
    assert "must be a non-empty list of numbers" in done.stdout
