"""Stand-ins for external services, speaking their real HTTP protocols on loopback."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeChat(BaseHTTPRequestHandler):
    """Speaks the OpenAI chat-completions protocol; `script` says how to answer each call
    in turn (the last entry repeats): {"content": ...}, {"status": 500}, {"sleep": s} or
    {"raw": b"..."}."""

    calls: list = []
    script: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        cls.calls.append((self.path, self.headers.get("Authorization"), body))
        step = cls.script[min(len(cls.calls), len(cls.script)) - 1]
        time.sleep(step.get("sleep", 0))
        if "status" in step:
            payload = b'{"error": {"message": "boom"}}'
        elif "raw" in step:
            payload = step["raw"]
        else:
            message = {"role": "assistant", "content": step.get("content", "")}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            payload = json.dumps({"object": "chat.completion", "choices": [choice]}).encode()
        try:
            self.send_response(step.get("status", 200))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up waiting (the timeout test)

    def log_message(self, *args):
        pass


PROFILE = (
    "The user is a web developer who prefers dark mode and TypeScript. "
    "They have completed courses in Python and React. "
    "They seem to enjoy learning new tools in their spare time."
)


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """Starts `handler` on a free loopback port in a daemon thread; call shutdown() after."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
