"""Imported once, in the worker fork server, after the backend's SDK: warms what the SDK
leaves for its first request.

Owns nothing at run time; its import has one effect. Building the first SDK client in a
process imports httpx's transport package (httpcore, with its proxy and HTTP/1.1
modules) and creates the SDK's cached platform headers: measured in a forked worker on
the 2-core bench machine, 0.2 s between a worker's first job and its first request
leaving (benchmarks/README.md, "Cold start"). A throwaway client built here, in the fork
server (:mod:`daemon.jobs.warm_start` lists this module after the SDK), puts those
modules and caches in the pages every worker is forked from.

The client is local to this import and closed at once: it never opens a connection
(nothing is sent), so no socket or thread crosses a fork. Which SDKs to warm is read
from ``sys.modules``: only one that the fork server already imported, never a new one.
"""

from __future__ import annotations

import sys

_WARM_URL = "http://127.0.0.1:9"  # never contacted: no request is made
# (module, client class) of each SDK a transport may use
_SDKS = (("anthropic", "Anthropic"), ("openai", "OpenAI"))


def warm() -> list[str]:
    """Build and close one client of every SDK already imported; returns their names.
    A failure is swallowed: a warm-up only saves time, the real client reports errors."""
    done = []
    for name, client_class in _SDKS:
        sdk = sys.modules.get(name)
        if sdk is None:
            continue
        try:
            client = getattr(sdk, client_class)(api_key="warm-up", base_url=_WARM_URL,
                                                max_retries=0)
            client.close()
        except Exception:  # noqa: BLE001, S112 - best effort; the worker builds its own
            continue
        done.append(name)
    return done


warm()
