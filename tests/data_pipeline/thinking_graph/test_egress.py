"""No EHR text leaves the machine by any route while the config names this machine: redirects are not followed,
proxy variables are ignored unless opted in (and then the proxy must be allowed), every request's host is checked
in the transport, and DNS-shaped tricks are other hosts. The socket layer records every connect the client makes
and refuses any that is not loopback, so a leak fails the test instead of reaching the network."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from data_pipeline.thinking_graph.config import SynthesisSpec
from data_pipeline.thinking_graph.egress import EgressRefused, guarded_async_client, host_allowed
from data_pipeline.thinking_graph.synthesis import synthesise
from tests.engines import require_engine
from tests.loopback import free_port

require_engine("openai", "pip install -e '.[umls]'")
OFF_MACHINE = "10.255.255.1"  # a private address no test may reach


@pytest.fixture
def connects(monkeypatch):
    """Every address a socket connects to, in order; a non-loopback one is refused (recorded first)."""
    seen: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(address) -> None:
        host = address[0] if isinstance(address, tuple) else str(address)
        seen.append(host)
        if not (host.startswith("127.") or host == "::1" or isinstance(address, str)):
            raise ConnectionRefusedError(f"test guard: connect to {host} refused")

    def connect(self, address):
        guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        guard(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


class _Server:
    """A loopback server that redirects every request (``307``) to ``target``, or answers as a chat endpoint."""

    def __init__(self, target: str | None = None):
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                server.hits.append(self.path)
                if self.command == "POST":
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if target is not None:
                    self.send_response(307)
                    self.send_header("Location", target + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                                   "choices": [{"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": "ok"}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()


def _spec(url: str, **kw) -> SynthesisSpec:
    return SynthesisSpec(**{"mode": "llm", "base_url": url, "api_key_env": None, "model": "m",
                            "candidates_per_sample": 1, "max_retries": 1, "backoff_seconds": 0.0,
                            "timeout_seconds": 2.0, **kw})


JOBS = [(0, "# Patient EHR Context #\nSAMPLE-0 secret EHR line\n\n# Ground Truth #\nGlucose\n\n# Task #\nx",
         ["Glucose"])]


@pytest.mark.parametrize("target", [f"http://{OFF_MACHINE}:80", "https://api.openai.com"])
def test_a_redirect_off_the_machine_is_not_followed(tmp_path, connects, target):
    server = _Server(target=target)
    try:
        chosen, summary = synthesise(JOBS, _spec(server.url + "/v1"), tmp_path / "r.jsonl")
    finally:
        server.close()
    assert server.hits == ["/v1/chat/completions"]  # one POST, answered 307, and not re-sent anywhere
    assert chosen == {} and summary["failed_requests"] == 1 and summary["retries"] == 0  # a 3xx is not retried
    assert all(h.startswith("127.") for h in connects), connects


def test_a_redirect_to_another_loopback_port_is_not_followed_either(tmp_path, connects):
    final = _Server()
    hop = _Server(target=final.url)
    try:
        synthesise(JOBS, _spec(hop.url + "/v1"), tmp_path / "r.jsonl")
    finally:
        hop.close(), final.close()
    assert hop.hits == ["/v1/chat/completions"] and final.hits == []


def test_proxy_variables_are_ignored_unless_opted_in(tmp_path, connects, monkeypatch):
    proxy = f"http://{OFF_MACHINE}:3128"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server = _Server()
    try:
        chosen, _ = synthesise(JOBS, _spec(server.url + "/v1", min_label_recall=0.0), tmp_path / "r.jsonl")
        assert server.hits == ["/v1/chat/completions"]  # straight to the endpoint, not to the proxy
        assert OFF_MACHINE not in connects
        # opting in to the proxy variables: the proxy is a destination too, and this one is off the machine
        with pytest.raises(EgressRefused, match="through a proxy"):
            synthesise(JOBS, _spec(server.url + "/v1", use_proxy_env=True), tmp_path / "r2.jsonl")
        assert OFF_MACHINE not in connects
    finally:
        server.close()


async def _post(client, url: str):
    return await client.post(url, json={"messages": [{"role": "user", "content": "EHR text"}]})


def test_every_request_is_checked_in_the_transport(connects):
    import asyncio

    client = guarded_async_client(_spec("http://127.0.0.1:9/v1"))
    for url in (f"http://{OFF_MACHINE}/v1/chat/completions", "http://127.0.0.1.nip.io/v1/chat/completions",
                "http://127.0.0.1@example.org/v1"):
        with pytest.raises(EgressRefused):
            asyncio.run(_post(client, url))
    assert connects == []  # refused before any socket was opened


@pytest.mark.parametrize("host, trusted, allowed", [
    ("127.0.0.1", [], True), ("127.8.9.1", [], True), ("::1", [], True), ("[::1]", [], True),
    ("localhost", [], True), ("LOCALHOST.", [], True),
    ("127.0.0.1.nip.io", [], False),        # a public name that resolves to loopback today, anything tomorrow
    ("localtest.me", [], False), ("2130706433", [], False),  # decimal form: refused rather than guessed
    ("0.0.0.0", [], False), ("10.0.0.5", [], False), ("serve-svc.ray", [], False),
    ("serve-svc.ray", ["serve-svc.ray"], True), ("Serve-Svc.Ray.", ["serve-svc.ray"], True),
])
def test_which_hosts_are_this_machine(host, trusted, allowed):
    assert host_allowed(host, trusted) is allowed


def test_localhost_pointing_elsewhere_is_refused(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                                                                 (OFF_MACHINE, 0))])
    assert not host_allowed("localhost", [])
    with pytest.raises(ValueError, match="allow_ehr_to_third_party_api"):
        _spec("http://localhost:8000/v1")
