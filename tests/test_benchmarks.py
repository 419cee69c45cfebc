"""The benchmark scripts still import: they run outside the test suite (they time things),
so a refactor that breaks one would otherwise go unnoticed until someone runs it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_script_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as when run: they import their neighbours
    module = importlib.import_module(name)
    if name not in ("asgi", "machine", "wrk"):  # the helpers the scripts share
        assert callable(getattr(module, "main", None)), f"benchmarks/{name}.py has no main()"
    assert name in sys.modules
