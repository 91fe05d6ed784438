"""How long finished instances are kept: daprd's workflow ``stateRetentionPolicy`` (a Configuration's
``spec.workflow.stateRetentionPolicy``: ``anyTerminal``, ``completed``, ``failed``, ``terminated``, each a Go
duration such as ``72h`` or ``30m``), given to the sidecar as ``--retention`` or ``SIDECAR_RETENTION``.
Off by default: nothing is purged unless asked for.

Go's duration syntax is small and exact (a sequence of decimal numbers with the units ns, us, µs, ms, s, m,
h); it is parsed here in a few lines rather than with a general "human duration" library, which would accept
forms daprd refuses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .model import CANCELED, COMPLETED, FAILED, TERMINATED

if TYPE_CHECKING:
    from .model import Status

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_KEYS = {"anyTerminal": None, "completed": COMPLETED, "failed": FAILED, "terminated": TERMINATED}


class RetentionError(ValueError):
    """A retention policy that cannot be read; the message says what was expected."""


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (``1h30m``, ``90s``, ``500ms``); a bare ``0`` is zero."""
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise RetentionError(f"{text!r} is not a duration: expected a Go duration such as 72h, 30m, 90s or 1h30m")
    return total


@dataclass(frozen=True)
class RetentionPolicy:
    """Seconds a finished instance is kept, by terminal status; a status without one is kept for ever."""

    by_status: dict[Status, float]

    @classmethod
    def parse(cls, text: str) -> RetentionPolicy:
        """``72h`` (any terminal status), or ``completed=1m,failed=720h,terminated=360h,anyTerminal=360h``."""
        text = text.strip()
        if not text:
            raise RetentionError("the retention policy is empty")
        if "=" not in text:
            return cls.parse(f"anyTerminal={text}")
        given: dict[str, float] = {}
        for part in text.split(","):
            key, _, value = part.strip().partition("=")
            if key not in _KEYS:
                raise RetentionError(f"{key!r} is not a retention key: one of {', '.join(_KEYS)}")
            given[key] = parse_duration(value.strip())
        default = given.get("anyTerminal")
        statuses = [COMPLETED, FAILED, TERMINATED, CANCELED]
        by_status = {s: given.get(_name(s), default) for s in statuses}
        return cls({s: v for s, v in by_status.items() if v is not None})

    def cutoffs(self, now: float) -> dict[int, float]:
        """For each status with a retention, the time before which a finished instance is purged."""
        return {status: now - seconds for status, seconds in self.by_status.items()}

    @property
    def sweep_interval(self) -> float:
        """How often to look for expired instances: a quarter of the shortest retention, within 0.2 s to 60 s."""
        return min(max(min(self.by_status.values(), default=60.0) / 4, 0.2), 60.0)


def _name(status: Status) -> str:
    return next((k for k, v in _KEYS.items() if v == status), "anyTerminal")
