"""Lists used as rings: values written over the oldest ones from a slot on, wrapping round past
the last slot. The feedback index and the drift window keep their per-request numbers this way,
in lists made once, so a request leaves no container alive for the cyclic collector to scan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def write(ring: list[Any], start: int, values: Sequence[Any]) -> None:
    """``values`` into ``ring`` from slot ``start`` on, wrapping round past the last slot
    (``len(values) <= len(ring)``)."""
    split = len(ring) - start
    if len(values) <= split:
        ring[start : start + len(values)] = values
    else:
        ring[start:] = values[:split]
        ring[: len(values) - split] = values[split:]


def read(ring: list[Any], start: int, n: int) -> list[Any]:
    """The ``n`` values from slot ``start`` on, wrapping round past the last slot."""
    end = start + n
    if end <= len(ring):
        return ring[start:end]
    return ring[start:] + ring[: end - len(ring)]
