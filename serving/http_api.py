"""The FastAPI app: routes, bearer auth, body-size limit, OpenAI-shaped errors, request metrics.

Built per replica by ``make_api(service, api_keys, max_body_bytes)``, so the same app runs under Ray Serve and
in-process (tests use it with an ASGI transport, no Ray).

Status codes: 401 missing/wrong key (when keys are configured), 404 unknown model, 413 body or prompt too large,
422 malformed JSON / schema / limits, 503 overload (Serve's ``max_queued_requests``; on the vLLM path also the LLM
server's), 500 engine failure. Every error body is ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Sequence

from serving import openai_schema as oai
from serving.ehr_api import PredictRequest
from serving.service import ApiError, InferenceService

log = logging.getLogger(__name__)

#: The only routes answered without a key (load balancers and Serve probe it). Every other path - every route,
#: and every unknown path, under whatever route prefix the app is served - needs a key when keys are configured.
OPEN_ROUTES = frozenset({"/health"})
#: metric route labels; anything else is counted as "other" (bounded label cardinality)
METRIC_ROUTES = frozenset({"/health", "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/ehr/predict",
                           "/v1/ehr/tasks"})


def route_path(scope) -> str:
    """The path the app routes on: the request path without the mount/Serve route prefix (ASGI ``root_path``).

    Under ``http.route_prefix=/ehr`` Ray Serve sends ``path=/ehr/v1/models`` with ``root_path=/ehr``; the router
    matches ``/v1/models``. This is the same rule as Starlette's router (``starlette._utils.get_route_path``), so
    the key check and the routing can never disagree about which route a request reaches.
    """
    path, root = scope.get("path", ""), scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root):] if path[len(root)] == "/" else path


def needs_key(scope) -> bool:
    """One authorization rule for every route: only :data:`OPEN_ROUTES` are open."""
    return route_path(scope) not in OPEN_ROUTES


def key_matches(header: str | None, keys: Sequence[str]) -> bool:
    """Constant-time check of an ``Authorization: Bearer <key>`` header against the configured keys."""
    if not header or not header.startswith("Bearer "):
        return False
    given = header[len("Bearer "):].strip().encode()
    return any(hmac.compare_digest(given, k.encode()) for k in keys)


class BodyLimitMiddleware:
    """Reject bodies larger than ``max_bytes`` with 413, by Content-Length or while streaming the body."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await _send_error(send, 413, self._message(int(length)), "request_too_large")
        if length is not None:
            return await self.app(scope, receive, send)
        # chunked upload: buffer up to the limit, then replay
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                return await _send_error(send, 413, self._message(size), "request_too_large")
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    def _message(self, size: int) -> str:
        return (f"request body of {size} bytes exceeds limits.max_body_bytes={self.max_bytes}; send less input "
                "or raise the limit in the serve config")


class AuthMetricsMiddleware:
    """Bearer-key check on every route but :data:`OPEN_ROUTES` (401 in the OpenAI error shape) and per-request
    metrics (pure ASGI, so streaming responses pass through untouched)."""

    def __init__(self, app, keys: Sequence[str], metrics):
        self.app, self.keys, self.metrics = app, tuple(keys), metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, path, status = time.perf_counter(), route_path(scope), [500]
        if self.keys and needs_key(scope):
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            if not key_matches(header, self.keys):
                await _send_error(send, 401, "missing or invalid API key; send `Authorization: Bearer <key>`",
                                  "invalid_api_key", err_type="authentication_error",
                                  extra_headers=[(b"www-authenticate", b"Bearer")])
                self._record(scope, path, 401, start)
                return

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, path, status[0], start)

    def _record(self, scope, path: str, status: int, start: float) -> None:
        route = path if path in METRIC_ROUTES else "other"
        self.metrics.request(route, status, (time.perf_counter() - start) * 1000)
        if status >= 400:
            log.info("%s %s -> %d", scope.get("method"), scope.get("path", ""), status)


async def _send_error(send, status: int, message: str, code: str, err_type: str = "invalid_request_error",
                      extra_headers: list | None = None) -> None:
    import json

    body = json.dumps(oai.error_body(message, err_type, code=code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})


def make_api(service: InferenceService, api_keys: Sequence[str], max_body_bytes: int):
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app = FastAPI(title="EHR-R1 inference", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    keys = tuple(api_keys)

    def err(status: int, message: str, err_type: str = "invalid_request_error", param=None, code=None):
        return JSONResponse(oai.error_body(message, err_type, param, code), status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return err(exc.status, exc.message, exc.err_type, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
            problems.append(f"{where}: {e.get('msg')}")
        json_bad = any(e.get("type") == "json_invalid" for e in exc.errors())
        return err(422, ("malformed JSON body: " if json_bad else "invalid request: ") + "; ".join(problems),
                   code="invalid_json" if json_bad else "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return err(exc.status_code, str(exc.detail), "invalid_request_error")

    # the last added middleware runs first: auth (and metrics of every answer), then the body-size limit
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(AuthMetricsMiddleware, keys=keys, metrics=service.metrics)

    @app.get("/health")
    async def health():
        await service.engine.check_health()
        return {"status": "ok", "model": service.model_id}

    @app.get("/v1/models")
    async def models():
        return service.models()

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        if model_id != service.model_id:
            raise ApiError(404, f"model {model_id!r} is not served here", param="model", code="model_not_found")
        return service.models()["data"][0]

    @app.post("/v1/chat/completions")
    async def chat(body: oai.ChatCompletionRequest):
        if body.stream:
            return StreamingResponse(await service.chat_stream(body), media_type="text/event-stream")
        return await service.chat(body)

    @app.post("/v1/completions")
    async def completions(body: oai.CompletionRequest):
        if body.stream:
            return StreamingResponse(await service.completions_stream(body), media_type="text/event-stream")
        return await service.completions(body)

    @app.get("/v1/ehr/tasks")
    async def tasks():
        return service.tasks()

    @app.post("/v1/ehr/predict")
    async def predict(body: PredictRequest):
        return await service.predict(body)

    return app
