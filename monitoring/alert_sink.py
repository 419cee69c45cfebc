"""A file receiver for Alertmanager: each webhook notification appended as one JSON line.

Alertmanager has no file receiver of its own; this standard-library server is one, so the
compose stack's alerts land somewhere a person (or ``tail -f``) can read without a pager.
Run: ``python monitoring/alert_sink.py [--port 9095] [--out /alerts/alerts.jsonl]``.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAX_BYTES = 1024 * 1024  # a notification holds a group of alerts, never megabytes


def handler(out: Path) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BYTES:
                self.send_error(413 if length else 411)
                return
            try:
                notification = json.loads(self.rfile.read(length))
            except ValueError:
                self.send_error(400, "not JSON")
                return
            line = json.dumps(notification, separators=(",", ":"), sort_keys=True) + "\n"
            with lock, out.open("a", encoding="utf-8") as f:
                f.write(line)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # the file is the log

    return Sink


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--out", default="/alerts/alerts.jsonl")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ThreadingHTTPServer((args.host, args.port), handler(out)).serve_forever()


if __name__ == "__main__":
    main()
