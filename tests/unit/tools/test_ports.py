"""``devtools.ports``: free ports below the kernel's ephemeral range, never one handed out or reserved before."""

from __future__ import annotations

import pytest

from devtools import ports


def test_a_reserved_port_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process wrote these into a template: nothing listens on them yet, so only the reservation keeps
    # this process from picking one of them (a daprd then dies on "address already in use").
    monkeypatch.setattr(ports, "_handed_out", set())
    low, high = ports._RANGE
    left = next(p for p in range(low, high) if not ports.taken(p))
    ports.reserve(p for p in range(low, high) if p != left)
    assert ports.free_port() == left
    assert left in ports._handed_out  # and never again


def test_free_ports_are_below_the_ephemeral_range_and_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_handed_out", set())
    picked = [ports.free_port() for _ in range(200)]
    assert len(set(picked)) == 200
    assert all(20000 <= p < 32768 for p in picked)
