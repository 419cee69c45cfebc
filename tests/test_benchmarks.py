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


def test_the_cpu_meter_tells_the_loop_the_threads_and_the_children_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import subprocess
    import threading
    import time

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from bench_service import cpu_ns

    spun, stop = threading.Event(), threading.Event()

    def spin() -> None:  # 0.2 s of this thread's own CPU, however busy the machine, then wait
        while time.thread_time() < 0.2:
            pass
        spun.set()
        stop.wait()

    burn = "import time\nwhile time.process_time() < 0.3: pass\nprint('spun', flush=True)\n"
    burn += "time.sleep(60)\n"
    before = cpu_ns(os.getpid())
    thread = threading.Thread(target=spin)
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        thread.start()
        assert child.stdout is not None and child.stdout.readline() == "spun\n"
        assert spun.wait(60)
        after = cpu_ns(os.getpid())  # both still alive, so both counted
    finally:
        stop.set()
        thread.join()
        child.kill()
        child.wait()
    loop, threads, children = (b - a for a, b in zip(before, after, strict=True))
    assert threads >= 0.2e9 and children >= 0.3e9
    assert 0 <= loop < 0.2e9  # this thread only waited
