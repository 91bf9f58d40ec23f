#!/usr/bin/env python3
"""A webhook receiver for the demo, the alarm tests and the latency bench:
appends every POST as one JSON line (path, Idempotency-Key, body, received_at
in Unix seconds) to OUT and answers 200, or 500 on paths under /fail (so a
test can see retries). Usage: webhook_sink.py PORT OUT"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        with open(sys.argv[2], "a", encoding="utf-8") as out:
            out.write(json.dumps({"path": self.path, "key": self.headers.get("Idempotency-Key", ""),
                                  "body": body, "received_at": time.time()}) + "\n")
        self.send_response(500 if self.path.startswith("/fail") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
