"""Why a Dapr process could not start, from its own log: its ``level=fatal`` line, and the one message a run gives
when a certificate could not be had. daprd, placement and the scheduler do not give up when sentry cannot be
reached or is not trusted: they wait in "Fetching initial identity" for ever, silent, and say why only once
stopped (``failed to retrieve the initial identity: ... connection refused`` or ``... certificate signed by unknown
authority``). So a run stops them at its deadline and reads the reason from what they printed on the way out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')
_IDENTITY = "failed to retrieve the initial identity: "


def fatal_lines(lines: Iterable[str]) -> list[str]:
    """The messages of the ``level=fatal`` lines among ``lines`` (Dapr's text log format), unescaped."""
    found = []
    for line in lines:
        if "level=fatal" not in line:
            continue
        match = _MSG.search(line)
        found.append(_unescape(match[1]) if match else line.strip())
    return found


def startup_failure(tails: Mapping[str, Sequence[str]], sentry_address: str | None) -> str | None:
    """The one message for a run that did not come up, from each process's last lines (name -> lines), or None
    when no process said why: first a certificate that could not be had, then sentry's own fatal error."""
    for name, lines in tails.items():
        for message in fatal_lines(lines):
            if _IDENTITY in message:
                cause = message.split(_IDENTITY, 1)[1]
                return f"{name} could not get a certificate from sentry at {sentry_address}: {cause}"
    for name, lines in tails.items():
        fatal = fatal_lines(lines)
        if fatal:
            return f"{name} could not start: {fatal[-1]}"
    return None


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
