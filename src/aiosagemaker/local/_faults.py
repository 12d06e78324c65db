"""Fault injection: extra model latency, ``ServiceUnavailable`` answers and slow accepts.

All randomness comes from one :class:`random.Random` seeded from :attr:`FaultConfig.seed`, and
is drawn on the emulator's event loop, so a given seed and request order give the same faults.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from typing import Literal

from ._spec import ConfigError

LatencyKind = Literal["fixed", "uniform", "lognormal"]


@dataclass(frozen=True)
class Latency:
    """Extra model latency in seconds.

    ``fixed``: always ``a``. ``uniform``: between ``a`` and ``b``. ``lognormal``: median ``a``,
    shape ``b`` (sigma of the underlying normal).
    """

    kind: LatencyKind = "fixed"
    a: float = 0.0
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "uniform", "lognormal"):
            raise ConfigError(f"unknown latency distribution {self.kind!r}")
        if not (math.isfinite(self.a) and math.isfinite(self.b)) or self.a < 0 or self.b < 0:
            raise ConfigError("latency parameters must be finite and >= 0")
        if self.kind == "uniform" and self.b < self.a:
            raise ConfigError("uniform latency needs low <= high")

    @classmethod
    def fixed(cls, seconds: float) -> Latency:
        """Always ``seconds``."""
        return cls("fixed", float(seconds))

    @classmethod
    def uniform(cls, low: float, high: float) -> Latency:
        """Uniformly distributed between ``low`` and ``high`` seconds."""
        return cls("uniform", float(low), float(high))

    @classmethod
    def lognormal(cls, median: float, sigma: float = 0.5) -> Latency:
        """Log-normal with the given median (seconds) and shape ``sigma``."""
        return cls("lognormal", float(median), float(sigma))

    @classmethod
    def parse(cls, text: str) -> Latency:
        """Parse ``"0.2"``, ``"fixed:0.2"``, ``"uniform:0.1,0.3"`` or ``"lognormal:0.2,0.5"``."""
        kind, sep, params = text.strip().partition(":")
        if not sep:
            kind, params = "fixed", text
        try:
            values = [float(v) for v in params.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"bad latency {text!r}: parameters must be numbers") from None
        arity = {"fixed": (1,), "uniform": (2,), "lognormal": (1, 2)}.get(kind)
        if arity is None:
            raise ConfigError(f"bad latency {text!r}: use fixed, uniform or lognormal")
        if len(values) not in arity:
            raise ConfigError(f"bad latency {text!r}: wrong number of parameters for {kind}")
        if kind == "fixed":
            return cls.fixed(values[0])
        if kind == "uniform":
            return cls.uniform(values[0], values[1])
        return cls.lognormal(values[0], values[1] if len(values) > 1 else 0.5)

    def sample(self, rng: random.Random) -> float:
        """Draw one latency in seconds."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.a == 0:
            return 0.0
        return rng.lognormvariate(math.log(self.a), self.b)


@dataclass(frozen=True)
class FaultConfig:
    """Faults the emulator injects; replace at run time with ``LocalEndpoint.set_faults``.

    Args:
        model_latency: Extra seconds added to every model call (inside the invocation timeout);
            a number means :meth:`Latency.fixed`.
        unavailable_rate: Fraction (0..1) of valid invocations answered with 503
            ``ServiceUnavailable`` instead of being accepted.
        internal_failure_rate: Fraction (0..1) of valid invocations answered with 500
            ``InternalFailure`` (drawn after ``unavailable_rate``).
        accept_delay: Seconds to wait before answering the 202 (slow accept).
        seed: Seed of the random generator behind latency and ``unavailable_rate``.
    """

    model_latency: Latency | float = 0.0
    unavailable_rate: float = 0.0
    accept_delay: float = 0.0
    seed: int | None = None
    internal_failure_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("unavailable_rate", "internal_failure_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {rate}")
        if not math.isfinite(self.accept_delay) or self.accept_delay < 0:
            raise ConfigError(f"accept_delay must be >= 0, got {self.accept_delay}")
        if not isinstance(self.model_latency, Latency):
            object.__setattr__(self, "model_latency", Latency.fixed(float(self.model_latency)))

    @property
    def latency(self) -> Latency:
        """:attr:`model_latency` as a :class:`Latency`."""
        value = self.model_latency
        return value if isinstance(value, Latency) else Latency.fixed(value)


class FaultState:
    """The current :class:`FaultConfig` and its random generator (thread-safe)."""

    def __init__(self, config: FaultConfig) -> None:
        self._lock = threading.Lock()
        self.config = config
        self._rng = random.Random(config.seed)

    def replace(self, config: FaultConfig) -> None:
        """Switch to ``config`` and reseed."""
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)

    def _roll(self, rate: float) -> bool:
        with self._lock:
            if rate <= 0.0:
                return False
            return rate >= 1.0 or self._rng.random() < rate

    def unavailable(self) -> bool:
        """Whether this invocation should be answered with ServiceUnavailable."""
        return self._roll(self.config.unavailable_rate)

    def internal_failure(self) -> bool:
        """Whether this invocation should be answered with InternalFailure."""
        return self._roll(self.config.internal_failure_rate)

    def model_latency(self) -> float:
        """Seconds of extra latency for this model call."""
        with self._lock:
            return self.config.latency.sample(self._rng)
