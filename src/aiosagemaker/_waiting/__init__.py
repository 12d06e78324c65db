"""Waiting for results: one engine per predictor, shared by every pending response.

- :mod:`._outcomes`: result locations and what a wait ends with;
- :mod:`._clock`: the engine's clock (time readings and every wait on them);
- :mod:`._schedule`: a :class:`~aiosagemaker.WaiterConfig` turned into check times;
- :mod:`._budget`: the S3 request budget (token bucket, AIMD on SlowDown);
- :mod:`._registry`: entries, cohorts (waits sharing a schedule), lanes, and groups;
- :mod:`._pending`: registering waits into cohorts and groups, and taking them out;
- :mod:`._engine`: the scheduler (which group to check, when, and how);
- :mod:`._checks`, :mod:`._listing`, :mod:`._probing`: the S3 check detectors;
- :mod:`._detector`: detectors that are told of results (SQS notifications);
- :mod:`._collect`: the waiter's side (wait, watch, reading what was found);
- :mod:`._completion`: ``as_completed`` and ``wait`` over many responses.
"""

from ._budget import DEFAULT_S3_REQUESTS_PER_SECOND, RequestBudget
from ._clock import Clock, MonotonicClock
from ._engine import Detection, EngineStats, WaitingEngine
from ._outcomes import Completed, Failed, Outcome, ResultLocations

__all__ = [
    "DEFAULT_S3_REQUESTS_PER_SECOND",
    "Clock",
    "Completed",
    "Detection",
    "EngineStats",
    "Failed",
    "MonotonicClock",
    "Outcome",
    "RequestBudget",
    "ResultLocations",
    "WaitingEngine",
]
