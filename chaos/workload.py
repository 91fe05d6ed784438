"""The chaos workload: the plan's orders sent through the order-api's REST API at a fixed concurrency, a cancel
sent at its planned moment, each order followed until it ends (bounded). Survives the system's disruptions by
repeating the same request (a repeated POST of the same order is idempotent).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from orchestrator.domain import SETTLED, TERMINAL, WORKFLOW_FAILED

from .schedule import DECISIONS, PlannedOrder

RETRY_PAUSE_S = 0.5


@dataclass
class Progress:
    """What the workload has done so far; the injector waits on ``submitted``."""

    total: int
    submitted: int = 0
    finished: int = 0
    ended: dict[str, str] = field(default_factory=dict)  # order id -> the terminal status the lane saw
    going: dict[str, str] = field(default_factory=dict)  # order id -> what its lane waits for, while it waits
    unanswered: int = 0  # requests repeated because the system did not answer
    refused: list[str] = field(default_factory=list)  # a 4xx where none was due: reported as a violation
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def bump(self, **counts: int) -> None:
        async with self.changed:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)
            self.changed.notify_all()

    async def wait_submitted(self, at_least: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.submitted >= at_least)


async def run_workload(
    order_api: str, orders: list[PlannedOrder], concurrency: int, progress: Progress, order_timeout: float
) -> None:
    """Send every order, ``concurrency`` at a time; return once each has ended or its lane gave up waiting."""
    queue = iter(orders)
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=order_api, timeout=60, limits=limits) as client:

        async def lane() -> None:
            for order in queue:
                await _one(client, order, progress, order_timeout)

        await asyncio.gather(*(lane() for _ in range(min(concurrency, len(orders)))))


async def _one(client: httpx.AsyncClient, order: PlannedOrder, progress: Progress, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    submitted = False
    progress.going[order.order_id] = "an answer to its submission"
    try:
        later = order.cancel_after_s is not None or order.kind in DECISIONS
        wait = "false" if later else "true"
        response = await _until_answered(client, "POST", f"/orders?wait={wait}", order.body, progress, deadline)
        await progress.bump(submitted=1)
        submitted = True
        if order.cancel_after_s is not None:
            await asyncio.sleep(order.cancel_after_s)
            # 202 (it will unwind) or 409 (it had already ended): both are answers.
            await _until_answered(
                client, "POST", f"/orders/{order.order_id}/cancel", {"reason": "chaos"}, progress, deadline
            )
        if order.decision is not None:
            progress.going[order.order_id] = "it to await approval"
            if await _awaits_approval(client, order.order_id, progress, deadline):
                await asyncio.sleep(order.decide_after_s or 0.0)
                # 202, or 409 (it no longer waits: a fault ended it, or the deadline passed first): both are answers.
                decided = f"/orders/{order.order_id}/{order.decision}"
                await _until_answered(client, "POST", decided, {"reviewer": "chaos"}, progress, deadline)
        progress.going[order.order_id] = "its end"
        while response is None or response.json().get("status") not in TERMINAL:
            if time.monotonic() > deadline:
                return
            if response is not None and response.json().get("status") == WORKFLOW_FAILED:
                return  # its workflow stopped outside the saga: an operator's to resolve, once the run settles
            # The same order again, waiting server-side (bounded) for its end: idempotent, no polling loop here.
            response = await _until_answered(client, "POST", "/orders?wait=true", order.body, progress, deadline)
        progress.ended[order.order_id] = response.json()["status"]
    except TimeoutError:
        return
    except httpx.HTTPStatusError as err:
        progress.refused.append(
            f"{order.order_id}: {err.request.method} {err.request.url.path} answered "
            f"{err.response.status_code}: {err.response.text[:300]}"
        )
    finally:
        del progress.going[order.order_id]
        if not submitted:
            await progress.bump(submitted=1)  # given up before an answer: the injector must not wait for it
        await progress.bump(finished=1)


async def _awaits_approval(client: httpx.AsyncClient, order_id: str, progress: Progress, deadline: float) -> bool:
    """Poll the order until it awaits approval (True), or has ended or stopped without (False): its workflow failed
    outside the saga (WORKFLOW_FAILED), which no decision changes. Raises TimeoutError past ``deadline``."""
    while True:
        response = await _until_answered(client, "GET", f"/orders/{order_id}", None, progress, deadline)
        status = response.json()["status"] if response is not None else None
        if status == "AWAITING_APPROVAL":
            return True
        if status in SETTLED:
            return False
        if time.monotonic() > deadline:
            raise TimeoutError(f"/orders/{order_id}: never awaited approval, last {status}")
        await asyncio.sleep(0.2)


async def _until_answered(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    body: dict[str, Any] | None,
    progress: Progress,
    deadline: float,
) -> httpx.Response | None:
    """The request, repeated while the system does not answer it (down, restarting, 5xx); None after a 409 to a
    cancel or a decision (the order no longer takes one)."""
    while True:
        try:
            response = await client.request(method, url, json=body)
            if response.status_code == 409 and url.endswith(("/cancel", "/approve", "/reject")):
                return None
            if response.status_code < 500:
                response.raise_for_status()
                return response
        except httpx.TransportError:
            pass
        await progress.bump(unanswered=1)
        if time.monotonic() > deadline:
            raise TimeoutError(url)
        await asyncio.sleep(RETRY_PAUSE_S)
