"""``state_dir``: moto's S3, SNS and SQS state and the pending invocations, kept across restarts.

On stop the emulator writes ``moto.pickle`` (moto's in-memory backends, pickled with their
locks left out; every bucket, the emulator's own included) and ``pending.json`` (invocations
accepted but not finished); on start it reads both back before serving. Both files are
replaced atomically. Load only state directories you wrote yourself: ``moto.pickle`` is a
pickle.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from ._queue import Invocation
from ._request import InvocationRequest

MOTO_FILE = "moto.pickle"
PENDING_FILE = "pending.json"
SERVICES = ("s3", "sns", "sqs")
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class _Pickler(pickle.Pickler):
    """Pickles moto's backends; locks and conditions are recreated fresh on load."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, _LOCK_TYPES):
            return (threading.RLock if "RLock" in type(obj).__name__ else threading.Lock), ()
        return NotImplemented


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _backends(service: str) -> Any:
    from moto.backends import get_backend

    return get_backend(service)  # type: ignore[call-overload]


def save_moto(state_dir: Path) -> None:
    """Snapshot moto's S3, SNS and SQS backends (all accounts and regions)."""
    snapshot = {
        service: {account: dict(regions) for account, regions in _backends(service).items()}
        for service in SERVICES
    }
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(snapshot)
    _write_atomically(state_dir / MOTO_FILE, buffer.getvalue())


def load_moto(state_dir: Path) -> bool:
    """Put a snapshot back into moto's backends; ``False`` if there is none."""
    path = state_dir / MOTO_FILE
    if not path.exists():
        return False
    snapshot = pickle.loads(path.read_bytes())  # the user's own state directory
    for service, accounts in snapshot.items():
        backends = _backends(service)
        for account, regions in accounts.items():
            for region, backend in regions.items():
                backends[account][region] = backend
    _register_buckets(_backends("s3"))
    return True


def _register_buckets(s3: Any) -> None:
    """Rebuild moto's process-wide bucket registry from the restored buckets.

    moto keeps "which account owns bucket X" outside the backends; without it a restored
    bucket looks free, and the emulator's start-up CreateBucket would replace it (and its
    objects, the results among them) with an empty one.
    """
    registry = getattr(s3, "bucket_accounts", None)
    if registry is None:  # a moto without the registry
        return
    for account, regions in s3.items():
        for backend in regions.values():
            for name, bucket in getattr(backend, "buckets", {}).items():
                registry[name] = (getattr(bucket, "partition", "aws"), account)


def _request_to_json(request: InvocationRequest) -> dict[str, Any]:
    data = dict(request.__dict__)
    data["body"] = None if request.body is None else base64.b64encode(request.body).decode()
    return data


def save_pending(state_dir: Path, pending: list[tuple[str, Invocation]]) -> None:
    """Write the accepted but unfinished invocations, ``(endpoint name, invocation)``."""
    records = [
        {
            "endpoint": name,
            "request": _request_to_json(item.request),
            "inference_id": item.inference_id,
            "output_location": item.output_location,
            "failure_location": item.failure_location,
            "received": item.received.isoformat(),
        }
        for name, item in pending
    ]
    _write_atomically(state_dir / PENDING_FILE, json.dumps(records, indent=1).encode())


def load_pending(state_dir: Path) -> list[tuple[str, Invocation]]:
    """The invocations :func:`save_pending` wrote (none if there is no file)."""
    path = state_dir / PENDING_FILE
    if not path.exists():
        return []
    result = []
    for record in json.loads(path.read_text()):
        fields = dict(record["request"])
        if fields["body"] is not None:
            fields["body"] = base64.b64decode(fields["body"])
        item = Invocation(
            request=InvocationRequest(**fields),
            inference_id=record["inference_id"],
            output_location=record["output_location"],
            failure_location=record["failure_location"],
            received=datetime.fromisoformat(record["received"]),
        )
        result.append((str(record["endpoint"]), item))
    return result
