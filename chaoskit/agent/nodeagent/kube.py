"""The few API calls the agent makes, over HTTPS with the pod's service account.

Standard library only: the image carries no client library. Every call has a short
timeout, so that an API server that does not answer never delays an expiry.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .orders import GROUP, NAMESPACE, NODE_LABEL, PLURAL, VERSION

ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT = 3.0


class ApiUnavailable(Exception):
    """The API did not answer, or answered with an error."""


@dataclass(frozen=True)
class Api:
    base_url: str
    account: Path = ACCOUNT
    timeout: float = TIMEOUT

    @classmethod
    def in_cluster(cls, host: str, port: str) -> Api:
        return cls(base_url=f"https://{host}:{port}")

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.account / "ca.crt"))

    def request(self, method: str, path: str, body: Any = None) -> Any:
        # The token is read on every call: projected tokens are rotated in place.
        token = (self.account / "token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/merge-patch+json"
        url = self.base_url + path
        if not url.startswith("https://"):
            raise ApiUnavailable(f"not an https URL: {url}")
        req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310 - https only, checked above
                req, timeout=self.timeout, context=self._context()
            ) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise ApiUnavailable(f"{method} {path}: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise ApiUnavailable(f"{method} {path}: {e}") from e

    def orders_path(self, name: str = "") -> str:
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
        return f"{path}/{urllib.parse.quote(name)}" if name else path

    def list_orders(self, node: str) -> list[dict[str, Any]]:
        selector = urllib.parse.quote(f"{NODE_LABEL}={node}")
        found = self.request("GET", f"{self.orders_path()}?labelSelector={selector}")
        return list(found.get("items") or [])

    def read_order(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", self.orders_path(name))
        return found

    def evicted_pods(self, node: str) -> dict[str, str]:
        """uid -> namespace/name of the pods on ``node`` its kubelet evicted. They stay
        listed until their owner or the GC deletes them: ``Failed`` with reason
        ``Evicted``, or (a process that exits 0 on SIGTERM) ``Succeeded`` with no reason;
        either way with the ``DisruptionTarget`` condition, reason ``TerminationByKubelet``."""
        selector = urllib.parse.quote(f"spec.nodeName={node}")
        found = self.request("GET", f"/api/v1/pods?fieldSelector={selector}")
        result: dict[str, str] = {}
        for pod in found.get("items") or []:
            meta, status = pod.get("metadata") or {}, pod.get("status") or {}
            if meta.get("uid") and evicted(status):
                result[str(meta["uid"])] = f"{meta.get('namespace')}/{meta.get('name')}"
        return result

    def write_status(self, name: str, status: dict[str, Any]) -> None:
        self.request("PATCH", self.orders_path(name) + "/status", {"status": status})


def evicted(status: dict[str, Any]) -> bool:
    """Whether a pod's status says its kubelet evicted it (see ``Api.evicted_pods``)."""
    if status.get("reason") == "Evicted":
        return True
    return any(
        c.get("type") == "DisruptionTarget"
        and c.get("status") == "True"
        and c.get("reason") == "TerminationByKubelet"
        for c in status.get("conditions") or []
    )
