"""Sticky A/B assignment across pods (the Kubernetes target): one variant per pod.

On Kubernetes each version runs in its own pods, and neither Argo Rollouts nor the
Gateway API can hash a header to a backend: the ``HTTPRoute`` splits requests by
weight, per request. So the pods keep the assignment sticky themselves: a request
that carries the test's ``sticky_header`` and no ``X-Mlops-Variant`` header is
assigned with :func:`~.routing.ab_variant` (the function the local gateway routes
with); when the variant is the other one, the pod forwards the request to the other
variant's Service with ``X-Mlops-Variant`` set, and returns its answer. Requests
without the key keep the route's per-request split, as on the local gateway. A
forwarded request is never forwarded again (it carries ``X-Mlops-Variant``), and
``X-Mlops-Variant: b`` from a client reaches B directly through the HTTPRoute rule.

The renderer gives both variants' pods the same ``MLOPS_AB_*`` environment; a pod
knows which variant it is from its own ``MLOPS_MODEL_VERSION``. When the peer does
not answer, the pod serves the request itself (availability over stickiness) and
logs a warning; forwarded answers carry ``X-Mlops-Sticky: forwarded-to-<variant>``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import urllib3

from mlops_actions.serving.routing import ab_variant

__all__ = ["AB_ENV", "VARIANT_HEADER", "StickyAB", "StickyForwarder", "sticky_from_env"]

log = logging.getLogger(__name__)

#: Set on forwarded requests and by clients that pick their variant; never forwarded again.
VARIANT_HEADER = "X-Mlops-Variant"
#: The pod environment the Kubernetes renderer writes for an A/B test.
AB_ENV = ("MLOPS_AB_STICKY_HEADER", "MLOPS_AB_WEIGHT", "MLOPS_AB_VERSION_A", "MLOPS_AB_VERSION_B",
          "MLOPS_AB_A_URL", "MLOPS_AB_B_URL")
# hop-by-hop and recomputed headers are not copied to the peer
_DROP = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive", "te", "upgrade",
                   "proxy-authorization", "proxy-connection", VARIANT_HEADER.lower()})


@dataclass(frozen=True)
class StickyAB:
    """This pod's part in an A/B test: which variant it serves and where the other one is."""

    header: str  # the sticky key's header
    weight: int  # percent of keys that go to B
    variant: str  # "a" or "b": what this pod serves
    peer_url: str  # the other variant's Service

    def wanted(self, headers: Mapping[str, str]) -> str | None:
        """The variant a request must get, or None when it has no key or was already routed."""
        if VARIANT_HEADER.lower() in headers:
            return None
        key = headers.get(self.header.lower())
        return ab_variant(key, self.weight) if key else None


def sticky_from_env(environ: Mapping[str, str] | None = None, version: str | None = None) -> StickyAB | None:
    """The A/B part of a pod from ``MLOPS_AB_*`` (None when the pod is not in an A/B test)."""
    env = os.environ if environ is None else environ
    if not all(env.get(name) for name in AB_ENV):
        return None
    mine = version or env.get("MLOPS_MODEL_VERSION", "")
    variant = "b" if mine == env["MLOPS_AB_VERSION_B"] else "a"
    peer = env["MLOPS_AB_A_URL"] if variant == "b" else env["MLOPS_AB_B_URL"]
    return StickyAB(env["MLOPS_AB_STICKY_HEADER"], int(env["MLOPS_AB_WEIGHT"]), variant, peer.rstrip("/"))


Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]


class StickyForwarder:
    """Forwards the other variant's keys to its Service (a thread, so the event loop never blocks)."""

    def __init__(self, sticky: StickyAB, *, timeout: float = 30.0) -> None:
        self.sticky = sticky
        self._pool = urllib3.PoolManager(maxsize=32, retries=False,
                                         timeout=urllib3.Timeout(connect=2.0, read=timeout))

    async def forward(self, path: str, headers: Mapping[str, str], body: bytes) -> Answer | None:
        """The peer's answer when the request belongs to the other variant, else None (serve here)."""
        variant = self.sticky.wanted(headers)
        if variant is None or variant == self.sticky.variant:
            return None
        sent = {k: v for k, v in headers.items() if k not in _DROP}
        sent[VARIANT_HEADER] = variant
        loop = asyncio.get_running_loop()
        try:
            resp = await loop.run_in_executor(None, lambda: self._pool.request(
                "POST", self.sticky.peer_url + path, body=body, headers=sent))
        except urllib3.exceptions.HTTPError as exc:
            log.warning("A/B peer %s did not answer (%s); serving variant %s here", self.sticky.peer_url,
                        exc, self.sticky.variant)
            return None
        extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()
                 if k.lower() in ("x-model-version", "x-variant", "x-request-id", "retry-after")]
        extra.append((b"x-mlops-sticky", f"forwarded-to-{variant}".encode()))
        return resp.status, resp.data, extra
