#!/usr/bin/env python3
"""A MOCK model provider for the real OpenClaw gateway in the tests: an OpenAI-compatible
`/v1/chat/completions` that streams a fixed, numbered reply at a fixed pace.

Why a stub and not the built-in model: OpenClaw sends every request with a ~50 KB system prompt
and 12 tools, far beyond SmolLM2-135M's context. The gateway in front of it is the real one; only
the model behind it is replaced. The last directive in the request picks the reply:
  [[stub:words=N,delay_ms=D]]  N numbered words ("w1 w2 ..."), D ms apart (default 6 and 10)
  [[stub:tool=NAME]]           first a call of the gateway's tool NAME (`ls` of "."), then, once
                               the tool's result is in the request, the words as above
Every reply starts with "stub:" and ends with "end.", so a test can tell a whole reply from a
cut one, and a duplicated one from a single one. GET /seen/MARKER says how many requests
carried MARKER: how a test knows the gateway started one run, not two.

    provider-stub.py PORT
"""

import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# Every chat request body, for /seen/MARKER.
SEEN = []


def chunk(content=None, finish=None, role=None):
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "stub-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/seen/"):
            # How many chat requests carried this marker: a duplicated run shows as 2.
            marker = self.path[len("/seen/"):]
            body = str(sum(1 for r in SEEN if marker in r)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path.rstrip("/").endswith("/models"):
            body = json.dumps({"object": "list", "data": [{"id": "stub-model", "object": "model"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode("utf-8", "replace")
        SEEN.append(raw)
        words, delay = 6, 10
        # The last directive: the request carries the session's earlier messages too.
        found = re.findall(r"\[\[stub:words=(\d+),delay_ms=(\d+)\]\]", raw)
        if found:
            words, delay = min(int(found[-1][0]), 5000), min(int(found[-1][1]), 10000)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        stream = body.get("stream", False)
        tool = self.wanted_tool(body.get("messages", []))
        if tool and stream:
            self.send_tool_call(tool)
            return
        parts = ["stub:"] + [f" w{i}" for i in range(1, words + 1)] + [" end."]
        if not stream:
            body = json.dumps({
                "id": "chatcmpl-stub", "object": "chat.completion", "model": "stub-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts)}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": len(parts), "total_tokens": len(parts) + 1},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            self.send_event(chunk(role="assistant", content=""))
            for part in parts:
                self.send_event(chunk(content=part))
                time.sleep(delay / 1000)
            self.send_event(chunk(finish="stop"))
            usage = chunk()
            usage["choices"] = []
            usage["usage"] = {"prompt_tokens": 1, "completion_tokens": len(parts), "total_tokens": len(parts) + 1}
            self.send_event(usage)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    @staticmethod
    def wanted_tool(messages):
        """The tool the newest directive asks for, unless its result is already here."""
        def text(m):
            c = m.get("content")
            return c if isinstance(c, str) else json.dumps(c)
        last = None
        for i, m in enumerate(messages):
            if m.get("role") == "user" and "[[stub:" in text(m):
                last = i
        if last is None:
            return None
        found = re.search(r"\[\[stub:tool=(\w+)\]\]", text(messages[last]))
        answered = any(m.get("role") == "tool" for m in messages[last + 1:])
        return found.group(1) if found and not answered else None

    def send_tool_call(self, name):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        call = {"index": 0, "id": "call_stub_1", "type": "function",
                "function": {"name": name, "arguments": json.dumps({"path": "."})}}
        c = chunk(role="assistant")
        c["choices"][0]["delta"]["tool_calls"] = [call]
        self.send_event(c)
        self.send_event(chunk(finish="tool_calls"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def send_event(self, obj):
        self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
        self.wfile.flush()


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
