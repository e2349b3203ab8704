"""Where the synthesis client may send EHR text, enforced on every request at the transport, not only on the URL.

A config that names a loopback endpoint is not enough: an HTTP client that follows redirects re-sends the POST
(prompt and EHR text) to wherever a ``307`` points, and one that honours ``HTTP_PROXY``/``HTTPS_PROXY`` hands the
request to the proxy. So the client built here

* never follows redirects (a ``3xx`` is an error, not a new destination);
* ignores the proxy environment variables (``trust_env=False``) unless ``synthesis.use_proxy_env`` opts in, and then
  the proxy's host must itself be allowed;
* checks the destination of **every** request in its transport (:class:`GuardedTransport`), so no route -- a
  redirect followed by some later code path, a base URL changed after validation -- reaches another host;
* takes a host as "this machine" only as a literal loopback address, or ``localhost`` when every address it resolves
  to is loopback (an ``/etc/hosts`` entry pointing ``localhost`` elsewhere is refused); names that merely contain
  a loopback address (``127.0.0.1.nip.io``) are other hosts.

Hosts in ``synthesis.trusted_hosts`` (your own cluster's Serve service) are allowed by name; anything else needs
``synthesis.allow_ehr_to_third_party_api: true``.
"""

from __future__ import annotations

import importlib
import ipaddress
import socket
import urllib.request
from collections.abc import Iterable
from urllib.parse import urlparse


class EgressRefused(PermissionError):
    """A request would carry EHR text to a host that is neither this machine nor trusted."""


def _normal(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


def is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(_normal(host)).is_loopback
    except ValueError:
        return False


def resolves_to_loopback_only(host: str) -> bool:
    """Every address ``host`` resolves to is loopback (False when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(_normal(host), None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def host_allowed(host: str, trusted: Iterable[str]) -> bool:
    """Loopback literals, ``localhost`` resolving to loopback only, and the configured trusted hosts."""
    name = _normal(host)
    if name in {_normal(t) for t in trusted}:
        return True
    if is_loopback_literal(name):
        return True
    return name == "localhost" and resolves_to_loopback_only(name)


def refusal(host: str, what: str = "EHR text") -> str:
    return (f"refusing to send {what} to {host!r}: not this machine and not in synthesis.trusted_hosts; set "
            "synthesis.allow_ehr_to_third_party_api: true only if your data use agreement allows it")


def check_host(host: str, trusted: Iterable[str], allow_any: bool, what: str = "EHR text") -> None:
    if not allow_any and not host_allowed(host, trusted):
        raise EgressRefused(refusal(host, what))


def env_proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP(S)_PROXY``, ``ALL_PROXY``; ``NO_PROXY`` honoured)."""
    host = urlparse(url).hostname or ""
    if urllib.request.proxy_bypass(host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(urlparse(url).scheme) or proxies.get("all")


def _http_library():
    """The HTTP library openai's client is built on (``httpx``, or ``httpx2`` in openai >= 3): the client we hand
    it must be of that library's class."""
    import openai

    return importlib.import_module(openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0])


def guarded_async_client(spec):
    """An async HTTP client for ``openai.AsyncOpenAI(http_client=...)`` that only reaches allowed hosts."""
    http = _http_library()
    trusted, allow_any = tuple(spec.trusted_hosts), bool(spec.allow_ehr_to_third_party_api)
    proxy = env_proxy_for(spec.base_url) if spec.use_proxy_env else None
    if proxy is not None:
        check_host(urlparse(proxy).hostname or "", trusted, allow_any, what="EHR text (through a proxy)")

    class GuardedTransport(http.AsyncBaseTransport):
        """Checks each request's host, then hands it to the real transport."""

        def __init__(self) -> None:
            self._inner = http.AsyncHTTPTransport(proxy=proxy) if proxy else http.AsyncHTTPTransport()

        async def handle_async_request(self, request):
            check_host(request.url.host, trusted, allow_any)
            return await self._inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self._inner.aclose()

    return http.AsyncClient(transport=GuardedTransport(), follow_redirects=False, trust_env=False,
                            timeout=spec.timeout_seconds)
