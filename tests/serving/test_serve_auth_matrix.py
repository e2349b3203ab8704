"""One authorization rule under every route prefix, through Ray Serve: prefixes ``/``, ``/ehr``, ``/a/b`` (three
applications on one Serve HTTP proxy, 127.0.0.1 and a free port) x no key / wrong key / right key, on every route.
Only the health route is open; unknown paths need a key as well (nothing is served unauthenticated by accident)."""

from __future__ import annotations


import pytest

from tests.loopback import free_port

pytestmark = pytest.mark.slow

KEY = "matrix-key"
PREFIXES = {"/": "ehr-auth-root", "/ehr": "ehr-auth-ehr", "/a/b": "ehr-auth-ab"}
RISK = {"ehr": "## Admissions\n- Admission_Type: URGENT", "task": "Inpatient_Mortality"}
#: (method, route, body, status with the right key): every route the app serves, plus unknown paths
ROUTES = [
    ("GET", "/v1/models", None, 200),
    ("GET", "/v1/models/tiny", None, 200),
    ("GET", "/v1/models/other", None, 404),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}, 200),
    ("POST", "/v1/completions", {"prompt": "Sodium", "max_tokens": 1}, 200),
    ("GET", "/v1/ehr/tasks", None, 200),
    ("POST", "/v1/ehr/predict", RISK, 200),
    ("POST", "/v1/ehr/predict", {**RISK, "ehr": None, "events": [{"file_name": "nope", "items": []}]}, 422),
    ("GET", "/v1/nope", None, 404),
    ("GET", "/nope", None, 404),
]
HEADERS = {"no key": {}, "wrong key": {"Authorization": "Bearer wrong"},
           "right key": {"Authorization": f"Bearer {KEY}"}}


@pytest.fixture(scope="module")
def base(ray_session, tiny_model_dir, tmp_path_factory):
    from ray import serve

    from serving.app import build_app_from_config
    from serving.config import ServeConfig

    keys = tmp_path_factory.mktemp("matrix-keys") / "api_keys"
    keys.write_text(f"{KEY}\n")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    for prefix, name in PREFIXES.items():
        cfg = ServeConfig.model_validate({
            "app_name": name, "model": {"path": tiny_model_dir, "served_name": "tiny"},
            "engine": {"kind": "transformers", "transformers": {"torch_threads": 1}},
            "http": {"port": port, "route_prefix": prefix},
            "auth": {"api_keys_env": None, "api_keys_file": str(keys)},
            "limits": {"max_new_tokens": 4, "default_max_tokens": 1, "predict_max_new_tokens": 1},
            "deployment": {"num_cpus": 0.1},
        })
        serve.run(build_app_from_config(cfg), name=name, route_prefix=cfg.http.route_prefix)
    yield f"http://127.0.0.1:{port}"
    for name in PREFIXES.values():
        serve.delete(name)
    serve.shutdown()


def _url(base: str, prefix: str, route: str) -> str:
    return base + prefix.rstrip("/") + route


@pytest.mark.parametrize("prefix", list(PREFIXES))
@pytest.mark.parametrize("who", list(HEADERS))
def test_every_route_under_every_prefix_needs_the_key(base, prefix, who):
    import httpx

    got = {}
    for method, route, body, ok in ROUTES:
        r = httpx.request(method, _url(base, prefix, route), json=body, headers=HEADERS[who], timeout=120)
        got[(method, route, ok)] = r.status_code
        if r.status_code == 401:
            assert r.json()["error"]["type"] == "authentication_error" and r.headers["www-authenticate"] == "Bearer"
    if who == "right key":  # 200s under /ehr and /a/b also show each prefix reaches its own application
        assert all(status == ok for (_, _, ok), status in got.items()), got
    else:
        assert set(got.values()) == {401}, got


@pytest.mark.parametrize("prefix", list(PREFIXES))
def test_health_is_the_only_open_route(base, prefix):
    import httpx

    for headers in HEADERS.values():
        r = httpx.get(_url(base, prefix, "/health"), headers=headers, timeout=60)
        assert r.status_code == 200 and r.json() == {"status": "ok", "model": "tiny"}

