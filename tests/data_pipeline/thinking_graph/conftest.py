"""Fixtures of the thinking-graph tests: a local fake OpenAI-compatible server (127.0.0.1, a free port) whose
failures are scripted per request."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.loopback import free_port


class FakeOpenAI:
    """``script(sample_id, attempt) -> "ok" | "error" | "bad" | "slow" | "garbage"``; records every chat request
    and the most requests it had in flight at once."""

    def __init__(self, script=lambda sample, attempt: "ok", answer=None, slow_seconds: float = 3.0):
        self.script, self.answer, self.slow = script, answer, slow_seconds
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0,
                                                             "owned_by": "test"}]})

            def do_POST(self):
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._chat()
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _chat(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                found = re.search(r"SAMPLE-(\d+)", prompt)
                # unit tests name the sample; real prompts are told apart by a stable hash of their text
                sample = found.group(1) if found else str(int(hashlib.sha1(prompt.encode()).hexdigest()[:8], 16))
                with fake.lock:
                    attempt = sum(1 for s in fake.requests if s == sample)
                    fake.requests.append(sample)
                action = fake.script(int(sample), attempt)
                if action == "error":
                    return self._send(500, {"error": {"message": "scripted failure"}})
                if action == "bad":  # a permanent failure: asking again cannot help
                    return self._send(400, {"error": {"message": "prompt too long"}})
                if action == "slow":
                    time.sleep(fake.slow)
                labels = prompt.split("# Ground Truth #\n", 1)[1].split("\n\n", 1)[0].splitlines()
                text = fake.answer(labels) if fake.answer else (
                    "## Extraction\n**Labs [2150-01-01 08:00:00]**: abnormal\n## Reasoning\nThe course points there."
                    "\n## Final Results\n" + "\n".join(labels))
                if action == "garbage":
                    text = "no sections here"
                self._send(200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": text}}],
                                 "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_openai():
    """The :class:`FakeOpenAI` class (use as ``with fake_openai(script) as server:``)."""
    return FakeOpenAI
