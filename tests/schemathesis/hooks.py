"""Schemathesis hooks for Proxyvisor's contract run (tests/suite/schema_fuzz.rs).

Only one thing is changed in what Schemathesis generates: URLs in request bodies (a monitor's
`url`, a webhook's `recovery.url`, a provider's `recovery.api_base`, a managed proxy's `url`)
are moved to this machine's loopback address, keeping everything else of them, so the service
under test never reaches beyond loopback when it watches, repairs or checks what was created.
"""

from urllib.parse import urlsplit, urlunsplit

import schemathesis

URL_FIELDS = ("url", "api_base")


def _on_loopback(value):
    if not isinstance(value, str) or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return value
    if not host:
        return value
    userinfo = ""
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@"
    netloc = f"{userinfo}127.0.0.1" + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _walk(body):
    if isinstance(body, dict):
        for key, value in list(body.items()):
            if key in URL_FIELDS:
                body[key] = _on_loopback(value)
            else:
                _walk(value)
    elif isinstance(body, list):
        for item in body:
            _walk(item)
    return body


@schemathesis.hook
def map_body(ctx, body):
    return _walk(body)
