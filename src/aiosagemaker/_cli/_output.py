"""What ``aiosagemaker batch`` writes and shows: OUT.jsonl replaced atomically, and the
progress bar (tqdm when installed)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from .._batch import BatchProgress

__all__ = ["Progress", "write_atomically"]


def write_atomically(path: Path, lines: list[str]) -> None:
    """Write ``path`` through a temporary file beside it, renamed over it (removed on error)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.writelines(line + "\n" for line in lines)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise OSError(error.errno, error.strerror, str(path)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


class Progress:
    """A progress bar with the run's total (tqdm if installed, else a line every 100)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None
        if importlib.util.find_spec("tqdm") is not None:
            tqdm_auto = importlib.import_module("tqdm.auto")
            self.bar = tqdm_auto.tqdm(total=total, unit="inference", dynamic_ncols=True)
        self.shown = 0

    def __call__(self, counts: BatchProgress) -> None:
        if self.bar is None:
            if counts.done % 100 == 0 and counts.done > self.shown:
                self.shown = counts.done
                sys.stderr.write(f"{counts.done}/{self.total} done, {counts.failed} failed\n")
            return
        if counts.done > self.shown:
            self.bar.update(counts.done - self.shown)
            self.shown = counts.done
        self.bar.set_postfix(failed=counts.failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
