"""The benchmark scripts still import: they run outside the test suite (they time things),
so a refactor that breaks one would otherwise go unnoticed until someone runs it."""

from __future__ import annotations

import importlib
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
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


def test_a_pooled_percentile_is_wrks_own_over_all_the_runs_requests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import shutil
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from wrk import WrkResult, pooled_percentile, run_wrk

    def run(pairs: tuple[tuple[int, int], ...]) -> WrkResult:
        n = sum(c for _, c in pairs)
        return WrkResult(1, n, 1.0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, pairs)

    fast = run(tuple((v, 1) for v in range(1, 101)))  # 1..100 µs, once each
    slow = run(((1000, 99), (5000, 1)))
    assert pooled_percentile([fast], 50) == 0.051  # rank 51: C's round(50.5)
    assert pooled_percentile([fast, slow], 50) == 1.000  # rank 101, not Python's round's 100
    assert pooled_percentile([fast, slow], 99) == 1.000  # rank 199 of 200
    assert pooled_percentile([fast, slow], 99.9) == 5.000
    with pytest.raises(ValueError, match="histogram"):
        pooled_percentile([run(())], 99)

    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (make tools)")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each answer waits for a delayed ACK

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # wrk hangs up mid-request at its end

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    body = tmp_path / "body.json"
    body.write_text("{}")
    try:
        r = run_wrk(f"http://127.0.0.1:{server.server_address[1]}/", body, 2, 1, histogram=True)
    finally:
        server.shutdown()
    # every request wrk timed, those answered after the run's end too (not in ``requests``)
    assert r.requests > 50 and sum(c for _, c in r.latencies_us) >= r.requests
    values = [v for v, _ in r.latencies_us]
    assert values == sorted(set(values))
    for p, expected in ((50, r.p50_ms), (90, r.p90_ms), (99, r.p99_ms)):
        assert pooled_percentile([r], p) == expected  # wrk's own figure from its histogram
    assert pooled_percentile([r, r], 99) == r.p99_ms


def test_the_interval_of_a_median_holds_it_and_narrows_with_more_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import random
    import statistics

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from wrk import median_interval

    rng = random.Random(3)
    few = [rng.gauss(0.9, 0.1) for _ in range(30)]
    many = few + [rng.gauss(0.9, 0.1) for _ in range(570)]
    (lo, hi), (lo_many, hi_many) = median_interval(few), median_interval(many)
    assert lo < statistics.median(few) < hi and lo_many < 0.9 < hi_many
    assert hi_many - lo_many < (hi - lo) / 2  # ~sqrt(20) narrower
    assert median_interval(few) == (lo, hi)  # seeded: a run prints the same interval
    wider = median_interval(few, level=0.99)
    assert wider[0] <= lo and wider[1] >= hi


def test_requests_are_timed_one_by_one_as_wrk_times_them(
    artifact_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bench_traffic.py --switched`` tags each request with the state of the server when it
    was sent: wrk's Lua must write every request it counts, on ``time.monotonic``'s clock, and
    an answer that is not 2xx must not pass for a timing."""
    import shutil
    import time

    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (make tools)")
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from wrk import finished, read_times, wrk_process

    started, body = _toggled_server(artifact_path, tmp_path, {})
    house = tmp_path / "house.json"
    house.write_text(body)
    with started as (_, url):
        with (
            pytest.raises(ValueError, match="one connection a thread"),
            wrk_process(url + "/predict", house, 4, 1, threads=2, times_dir=tmp_path),
        ):
            pass
        times = tmp_path / "times"
        times.mkdir()
        before = time.monotonic() * 1e6
        with wrk_process(url + "/predict", house, 4, 1, threads=4, times_dir=times) as proc:
            whole = finished(proc, 4)
        after = time.monotonic() * 1e6
        sent, latency = read_times(times)
        # every request wrk counted, and those answered after its end, in order of start
        assert len(sent) >= whole.requests > 50 and len(list(times.glob("*.txt"))) == 4
        assert before < sent[0] and (sent[:-1] <= sent[1:]).all() and sent[-1] + latency[-1] < after
        assert abs(float(np.percentile(latency, 50)) / 1e3 - whole.p50_ms) < 0.5
        refused = tmp_path / "refused.json"
        refused.write_text("{}")  # no features: 422
        bad = tmp_path / "bad"
        bad.mkdir()
        with wrk_process(url + "/predict", refused, 1, 1, threads=1, times_dir=bad) as proc:
            finished(proc, 1)
        with pytest.raises(RuntimeError, match=r"answers were not 2xx \(the first: 422\)"):
            read_times(bad)


def test_switched_stretches_count_each_request_under_the_state_it_was_sent_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from bench_traffic import Stretches

    # two pairs of stretches of 100 µs from 1,000: off, on | on, off
    switches = [(1000.0, False), (1100.0, True), (1200.0, True), (1300.0, False)]
    sent = np.array([900, 1005, 1030, 1110, 1150, 1199, 1210, 1250, 1305, 1350, 1420])
    latency = np.array([1, 2, 3, 40, 50, 60, 70, 80, 9, 10, 11]) * 100
    r = Stretches(guard_us=20)
    r.add(switches, 1400.0, sent, latency)
    # before the first switch, within 20 µs of a switch, or after the end: left out
    on, off = r.pairs[0]
    assert on.tolist() == [5000, 6000] and off.tolist() == [300]
    on, off = r.pairs[1]
    assert on.tolist() == [8000] and off.tolist() == [1000]
    assert len(r.pairs) == 2
    assert r.ratio(50) == pytest.approx(6000 / 650)  # all the on over all the off
    assert r.ratio(50, [0, 0]) == pytest.approx(5500 / 300)
    lo, hi = r.interval(50)
    assert lo <= r.ratio(50) <= hi
    assert r.interval(50) == (lo, hi)  # seeded: a run prints the same interval
    cells = r.row("all").split()
    assert cells[:4] == ["all", "2", "3", "2"]  # pairs, then the requests on and off
    assert cells[4:6] == ["6.00/0.65", f"{6000 / 650:.3f}"]  # the p50s (ms) and their ratio


def _toggled_server(
    artifact_path: str, tmp_path: Path, env: dict[str, str]
) -> tuple[AbstractContextManager[tuple[int, str]], str]:
    """``toggled_serve.py`` started with ``env`` beside ``MODEL_PATH`` (``bench_http.server``,
    on ``sys.path`` already), and the example house's body it was polled with."""
    import json

    from bench_http import server

    from model.workflow.artifact import load_artifact

    features = load_artifact(artifact_path).metadata["features"]
    body = json.dumps({f["name"]: f["example"] for f in features if f["example"] is not None})
    cmd = [sys.executable, str(BENCHMARKS / "toggled_serve.py")]
    env = {"MODEL_PATH": artifact_path, **env}
    return server(cmd, BENCHMARKS.parent, env, tmp_path / "log", body.encode()), body


def test_the_toggled_server_counts_a_request_only_while_monitoring_is_on(
    artifact_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bench_monitoring.py``'s part 4 compares one process's two ways of serving: the signals
    must really switch what a request records, and the shared count must count every request
    answered, in both ways."""
    import os
    import signal
    import time

    import httpx
    from exposition import metric  # tests/exposition.py

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from toggled_serve import RequestCount

    env = {"REQUEST_COUNT_FILE": str(tmp_path / "count")}
    started, body = _toggled_server(artifact_path, tmp_path, env)
    with started as (pid, url):
        count = RequestCount(tmp_path / "count")
        answered = count.read()
        assert answered >= 1  # the readiness poll's request

        def counted() -> float:
            """What one more request adds to the predictions counted."""
            before = metric(httpx.get(url + "/metrics").text, "houseprice_predictions_total")
            post = httpx.post(
                url + "/predict", content=body, headers={"Content-Type": "application/json"}
            )
            post.raise_for_status()
            return metric(httpx.get(url + "/metrics").text, "houseprice_predictions_total") - before

        def switch(sig: int, expected: float) -> None:
            os.kill(pid, sig)
            deadline = time.monotonic() + 10  # the handler runs once the loop wakes
            while (got := counted()) != expected and time.monotonic() < deadline:
                pass
            assert got == expected

        assert counted() == 1
        assert count.read() == answered + 3  # two scrapes and the POST, each counted as answered
        switch(signal.SIGUSR1, 0)
        answered = count.read()
        assert [counted() for _ in range(3)] == [0, 0, 0]
        assert count.read() == answered + 9
        switch(signal.SIGUSR2, 1)
        assert counted() == 1


def test_the_toggled_server_hands_answers_to_its_shadow_only_while_it_is_on(
    artifact_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bench_traffic.py --toggled`` compares one process with and without its shadow: with
    ``TOGGLE=shadow`` the signals must switch whether the shadow prices the served houses, and
    the shadow must price them again once switched back on."""
    import os
    import signal
    import time

    import httpx
    from exposition import metric  # tests/exposition.py

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    env = {"SHADOW_MODEL_PATH": artifact_path, "TOGGLE": "shadow"}
    started, body = _toggled_server(artifact_path, tmp_path, env)
    with started as (pid, url):

        def priced(behind: int = 0) -> tuple[float, float, bool]:
            """The houses the champion and the shadow priced, once the shadow is at most
            ``behind`` houses behind (or after 10 s), and whether the shadow's series is
            exposed (while it is on)."""
            deadline = time.monotonic() + 10
            while True:
                text = httpx.get(url + "/metrics").text
                champion, shadow = (
                    metric(text, "houseprice_predictions_total", role=role)
                    for role in ("champion", "shadow")
                )
                if champion - shadow <= behind or time.monotonic() > deadline:
                    return champion, shadow, 'role="shadow"' in text

        def post(n: int) -> None:
            for _ in range(n):
                r = httpx.post(
                    url + "/predict", content=body, headers={"Content-Type": "application/json"}
                )
                r.raise_for_status()

        def switch(sig: int, on: bool) -> None:
            os.kill(pid, sig)
            deadline = time.monotonic() + 10  # the handler runs once the loop wakes
            while ('role="shadow"' in httpx.get(url + "/metrics").text) != on:
                assert time.monotonic() < deadline

        champion, shadow, exposed = priced()
        assert exposed and shadow == champion > 0
        post(3)
        assert priced() == (champion + 3, shadow + 3, True)
        switch(signal.SIGUSR1, False)
        post(4)
        switch(signal.SIGUSR2, True)
        # the four were not handed over; one more priced was seen once in nine runs, not
        # explained (stop 31's closing note): all four handed over would leave no gap
        after = priced(4)
        assert after[0::2] == (champion + 7, True) and shadow + 3 <= after[1] <= shadow + 4
        post(2)
        last = priced(4)
        assert last[0::2] == (champion + 9, True) and shadow + 5 <= last[1] <= shadow + 6
