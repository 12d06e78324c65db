"""Why a wait may have run out: the endpoint has no running instances (scaled to zero).

An async endpoint whose auto-scaling policy allows zero instances accepts InvokeEndpointAsync
and queues the requests, but nothing runs until it scales out again. When a wait runs out,
one bounded ``DescribeEndpoint`` tells whether that is the case, and the
:class:`PollingTimeoutError` then says so and what to check. Anything going wrong here
(permissions, network, a slow answer) leaves the error exactly as it was.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._exceptions import PollingTimeoutError

__all__ = [
    "DESCRIBE_TIMEOUT_SECONDS",
    "REUSE_SECONDS",
    "describe_briefly",
    "scaled_to_zero_note",
    "timeout_explainer",
]

logger = logging.getLogger("aiosagemaker")

DESCRIBE_TIMEOUT_SECONDS = 5.0
"""Upper bound on the ``DescribeEndpoint`` made after a wait ran out."""
REUSE_SECONDS = 10.0
"""How long one predictor reuses that answer for further timeouts."""

Json = dict[str, Any]


def scaled_to_zero_note(endpoint_name: str, described: dict[str, Any]) -> str | None:
    """The sentence to add when ``described`` (a DescribeEndpoint answer) shows no instances."""
    variants = described.get("ProductionVariants")
    if not isinstance(variants, list) or not variants:
        return None
    counts = [v.get("CurrentInstanceCount") for v in variants if isinstance(v, dict)]
    if len(counts) != len(variants) or any(c != 0 for c in counts):
        return None  # running instances, or counts not reported
    desired = sum(
        v["DesiredInstanceCount"]
        for v in variants
        if isinstance(v.get("DesiredInstanceCount"), int) and v["DesiredInstanceCount"] > 0
    )
    progress = (
        f" It is scaling out (DesiredInstanceCount {desired})."
        if desired
        else " Nothing is asking it to scale out (DesiredInstanceCount 0)."
    )
    return (
        f" The endpoint {endpoint_name!r} has no running instances (DescribeEndpoint: "
        "CurrentInstanceCount 0): it is scaled to zero and requests wait in its queue until it "
        f"scales out.{progress} Check the CloudWatch metrics ApproximateBacklogSize and "
        f"HasBacklogWithoutCapacity (namespace AWS/SageMaker, EndpointName={endpoint_name}) "
        "and the endpoint's scaling policy: scaling out from zero needs a step-scaling policy "
        "on HasBacklogWithoutCapacity (target tracking on ApproximateBacklogSizePerInstance "
        "alone does not scale out from zero)."
    )


def _append(error: PollingTimeoutError, note: str) -> None:
    """Extend the error's message in place; the SDK-compatible format stays its prefix."""
    message = error.message + note
    error.message = message
    error.kwargs["message"] = message
    error.args = (error.fmt.format(**error.kwargs),)


async def describe_briefly(factory: Any, endpoint_name: str, bound: float) -> Json | None:
    """DescribeEndpoint within ``bound`` seconds; None on any failure or when it runs out."""
    with anyio.move_on_after(bound):
        try:
            async with factory.client("sagemaker") as client:
                described: Json = await client.describe_endpoint(EndpointName=endpoint_name)
                return described
        except Exception as failure:  # the timeout stays what it is
            logger.debug("DescribeEndpoint after a timeout failed: %r", failure)
    return None


class _Recent:
    """One factory's last DescribeEndpoint answers, and the lock that makes them one at a time."""

    def __init__(self) -> None:
        self.lock = anyio.Lock()
        self.answers: dict[str, tuple[float, Json | None]] = {}


_RECENT: weakref.WeakKeyDictionary[Any, _Recent] = weakref.WeakKeyDictionary()


def timeout_explainer(
    factory: Any, endpoint_name: str
) -> Callable[[PollingTimeoutError], Awaitable[None]]:
    """What a predictor's responses call when a wait ran out (``ResponseBinding``).

    It adds the scaled-to-zero note to the error when DescribeEndpoint shows no instances,
    within :data:`DESCRIBE_TIMEOUT_SECONDS`, and never raises. Many waits running out
    together make one DescribeEndpoint per predictor (``factory``), whose answer serves its
    timeouts of the next :data:`REUSE_SECONDS`.
    """

    async def explain(error: PollingTimeoutError) -> None:
        recent = _RECENT.setdefault(factory, _Recent())
        async with recent.lock:
            answered = recent.answers.get(endpoint_name)
            if answered is None or time.monotonic() - answered[0] > REUSE_SECONDS:
                described = await describe_briefly(factory, endpoint_name, DESCRIBE_TIMEOUT_SECONDS)
                answered = recent.answers[endpoint_name] = (time.monotonic(), described)
        note = None if answered[1] is None else scaled_to_zero_note(endpoint_name, answered[1])
        if note is not None:
            _append(error, note)

    return explain
