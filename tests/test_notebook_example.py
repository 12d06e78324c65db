"""examples/quickstart.ipynb executed as Jupyter would, in a fresh kernel (nbclient).

The notebook starts its own emulator. It must run top to bottom without an error and without
anything on stderr (warnings included), and show what it promises: the response as an HTML
table, a progress widget, the batch's results and its one failure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from cli_helpers import user_env

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "quickstart.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _outputs(notebook: Any) -> list[tuple[int, dict[str, Any]]]:
    return [
        (index, output)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
    ]


def _text(output: dict[str, Any]) -> str:
    if output["output_type"] == "stream":
        return str(output["text"])
    return str(output.get("data", {}).get("text/plain", ""))


def test_the_notebook_runs_cleanly_and_shows_progress_and_responses(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    env = user_env()
    client = NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=env)  # raises CellExecutionError on the first failing cell

    outputs = _outputs(notebook)
    stderr = [_text(output) for _, output in outputs if output.get("name") == "stderr"]
    assert stderr == [], stderr
    assert [o for _, o in outputs if o["output_type"] == "error"] == []

    html = [o["data"]["text/html"] for _, o in outputs if "text/html" in o.get("data", {})]
    assert len(html) == 2, html  # the response right after submission, and once completed
    assert all("<caption>AsyncInferenceResponse</caption>" in table for table in html)
    assert "InProgress" in html[0] or "Completed" in html[0]
    assert "Completed" in html[1] and "s3://" in html[1]

    texts = "".join(_text(output) for _, output in outputs)
    assert "{'sum': 10, 'mean': 2.5, 'count': 4}" in texts
    assert "39 results, 1 failed" in texts
    assert "sums of the first five rows: [1, 3, 6, 10, 15]" in texts
    assert re.search(r'row 7: .*demo model: "inputs" must be a non-empty list of numbers', texts)

    widgets = [o for _, o in outputs if WIDGET in o.get("data", {})]
    assert widgets, "progress=True showed no widget"
