"""``houseprice serve`` whose monitoring signals turn off and on, for ``bench_monitoring.py``.

``SIGUSR1`` turns monitoring off (``MONITORING_ENABLED=false``'s request path), ``SIGUSR2`` on
again: the requests read ``Service.monitoring`` each time, so one process serves both ways and
its two costs can be compared without the speed difference two processes of the same code
carry over a whole run. A benchmark's launcher, not a feature: the app has no such switch.

Run: ``.venv/bin/python benchmarks/toggled_serve.py --port 8000`` (``houseprice serve``'s
arguments and environment).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import serve
from app.main import App
from app.settings import Settings

_create_app = serve.create_app


def create_app(settings: Settings | None = None) -> App:
    app = _create_app(settings)
    service = app.state.service

    def switch(sig: int, frame: FrameType | None) -> None:
        service.monitoring = sig == signal.SIGUSR2

    signal.signal(signal.SIGUSR1, switch)
    signal.signal(signal.SIGUSR2, switch)
    return app


def main() -> int:
    serve.create_app = create_app
    return serve.main()


if __name__ == "__main__":
    raise SystemExit(main())
