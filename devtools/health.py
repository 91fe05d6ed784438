"""The one way every runner, benchmark, chaos run and test waits for processes to come up: poll a set of health
URLs until each answers 2xx, give up when a deadline passes or what should serve them has died, and name what
is still not answering. ``wait_healthy`` blocks; ``wait_healthy_async`` is the same for an event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping

import httpx

POLL_SECONDS = 0.25


class NotHealthy(RuntimeError):
    """What was waited for did not answer in time, or stopped running. ``pending`` names what did not answer."""

    def __init__(self, message: str, pending: list[str]) -> None:
        super().__init__(message)
        self.pending = pending


def answering(urls: Mapping[str, str], timeout: float = 1.0) -> set[str]:
    """The names in ``urls`` whose URL answers 2xx right now (one GET each, ``timeout`` seconds at the most)."""
    return {name for name, url in urls.items() if _answers(url, timeout)}


def _answers(url: str, timeout: float) -> bool:
    try:
        return httpx.get(url, timeout=timeout).is_success
    except httpx.HTTPError:
        return False


def wait_healthy(
    urls: Mapping[str, str],
    timeout: float,
    what: str = "the system",
    running: Callable[[], bool] = lambda: True,
    context: Callable[[], str] = str,
    every: float = POLL_SECONDS,
) -> None:
    """Return once every URL in ``urls`` (name -> URL) answers 2xx. NotHealthy when ``timeout`` seconds pass
    first, or as soon as ``running()`` is false; its message names ``what``, the names not answering, and ends
    with ``context()`` (a log's tail, say)."""
    pending = dict(urls)
    deadline = time.monotonic() + timeout
    while True:
        for name in answering(pending):
            del pending[name]
        if not pending:
            return
        if not running():
            raise _not_healthy(f"{what} stopped before it was up", pending, context)
        if time.monotonic() > deadline:
            raise _not_healthy(f"{what} not up after {timeout:.0f} s", pending, context)
        time.sleep(every)


async def wait_healthy_async(
    urls: Mapping[str, str],
    timeout: float,
    what: str = "the system",
    stop: asyncio.Event | None = None,
    context: Callable[[], str] = str,
    every: float = POLL_SECONDS,
) -> None:
    """``wait_healthy`` for an event loop: returns early, quietly, once ``stop`` is set."""
    pending = dict(urls)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while stop is None or not stop.is_set():
            for name, url in list(pending.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).is_success:
                        del pending[name]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise _not_healthy(f"{what} not up after {timeout:.0f} s", pending, context)
            if stop is None:
                await asyncio.sleep(every)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)


def _not_healthy(message: str, pending: Mapping[str, str], context: Callable[[], str]) -> NotHealthy:
    names = sorted(pending)
    extra = context()
    return NotHealthy(f"{message}: {', '.join(names)}" + (f"\n{extra}" if extra else ""), names)
