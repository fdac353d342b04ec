#!/usr/bin/env python3
"""Stand-in for `ps-server --http` until the server serves HTTP itself.

Serves the dashboard page at / and, at /status, one shard's JSON object as
`ps-ctl status --servers LIST --json` prints it inside {"shards": [...]},
which is what the real /status serves. With --progress FILE..., the
workers' JSON-lines output, each worker object also gets the per-epoch
evaluations the real /status is to carry, in the shape the page assumes:
"history": [{"epoch", "samples", "loss", "accuracy", "t_ms"}, ...] (the
test_loss / test_accuracy of each "epoch" line when there is an eval set;
t_ms: when the stand-in first read the line, ms since the Unix epoch).
Binds HOST:0 and prints its base URL (http://HOST:PORT) as the first stdout
line. Read-only; anything else is 404.

Usage: dashboard_standin.py --html PAGE --ctl PS_CTL --servers LIST
                            [--shard I] [--progress FILE...]

Delete this file (and its use in dashboard_chromium.sh) once ps-server has
--http: the test then prefers the real server.
"""
import argparse
import http.server
import json
import subprocess
import sys
import threading
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", required=True, help="the dashboard page")
    ap.add_argument("--ctl", required=True, help="the ps-ctl binary")
    ap.add_argument("--servers", required=True, help="shard endpoints")
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--progress", nargs="*", default=[],
                    help="ps-worker stdout files (JSON lines)")
    args = ap.parse_args()

    seen_ms = {}  # (file, line number) -> when first read
    lock = threading.Lock()  # guards seen_ms (one thread per request)

    def history():
        """worker id -> its per-epoch evaluations, from the progress files."""
        out = {}
        now = int(time.time() * 1000)
        for path in args.progress:
            try:
                lines = open(path, encoding="utf-8").read().splitlines()
            except OSError:
                continue
            for n, line in enumerate(lines):
                try:
                    ev = json.loads(line)
                except ValueError:  # a line still being written
                    continue
                if ev.get("event") != "epoch":
                    continue
                with lock:
                    t = seen_ms.setdefault((path, n), now)
                out.setdefault(ev.get("worker"), []).append({
                    "epoch": ev["epoch"], "samples": ev["samples"],
                    "loss": ev.get("test_loss", ev.get("loss")),
                    "accuracy": ev.get("test_accuracy", ev.get("accuracy")),
                    "t_ms": t})
        return out

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):  # keep stderr for errors only
            pass

        def reply(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                with open(args.html, "rb") as f:
                    self.reply(200, "text/html; charset=utf-8", f.read())
            elif path == "/status":
                r = subprocess.run(
                    [args.ctl, "status", "--servers", args.servers, "--json",
                     "--timeout", "1000", "--retries", "0"],
                    capture_output=True, text=True)
                if r.returncode != 0:
                    self.reply(503, "text/plain", r.stderr.encode())
                    return
                shard = json.loads(r.stdout)["shards"][args.shard]
                if args.progress:
                    hist = history()
                    for w in shard.get("workers", []):
                        w["history"] = hist.get(w.get("id"), [])
                self.reply(200, "application/json",
                           json.dumps(shard).encode())
            else:
                self.reply(404, "text/plain", b"not found\n")

        do_HEAD = do_GET

    srv = http.server.ThreadingHTTPServer((args.host, 0), Handler)
    print(f"http://{args.host}:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
