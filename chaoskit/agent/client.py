"""The harness's side of fault orders: create, renew, release, wait for the agent.

An order's expiry is absolute; the harness renews it while it lives (``renew``) and
releases it by moving the expiry to now (``release``): the agent undoes it on its next
tick and writes ``Undone``. Should the harness die, the agent undoes it at the expiry.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaoskit.agent.nodeagent.orders import (
    GROUP,
    NAMESPACE,
    NODE_LABEL,
    PLURAL,
    VERSION,
    Order,
    format_time,
    order_object,
    parse_order,
)
from chaoskit.errors import OperationFailed

DEFAULT_TTL = 30.0
"""Seconds an order outlives its last renewal (issue 14: undone within 30 s)."""


def new_name(fault: str) -> str:
    """A fresh order name (known before the order exists, so that it can be recorded)."""
    return f"{fault}-{uuid.uuid4().hex[:10]}"


class OrderFailed(OperationFailed):
    """An order was refused, failed on its node, or the agent did not answer it in time."""


class Orders:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    def create(
        self,
        node: str,
        fault: str,
        params: Mapping[str, str],
        *,
        ttl: float = DEFAULT_TTL,
        name: str = "",
        run: str = "",
        harness: str = "",
    ) -> str:
        name = name or new_name(fault)
        body = order_object(name, node, fault, params, time.time() + ttl, run=run, harness=harness)
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, body, _request_timeout=10
        )
        return name

    def _patch_expiry(self, name: str, expires_at: float) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            name,
            {"spec": {"expiresAt": format_time(expires_at)}},
            _request_timeout=10,
        )

    def renew_until(self, name: str, expires_at: float) -> None:
        self._patch_expiry(name, expires_at)

    def renew(self, name: str, *, ttl: float = DEFAULT_TTL) -> None:
        self._patch_expiry(name, time.time() + ttl)

    def release(self, name: str) -> None:
        """Ends the order now: the agent undoes it on its next tick."""
        self._patch_expiry(name, time.time())

    def get(self, name: str) -> Order:
        obj: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name, _request_timeout=10
        )
        return parse_order(obj)

    def list(self, node: str | None = None) -> list[Order]:
        selector = f"{NODE_LABEL}={node}" if node else ""
        found: Any = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, label_selector=selector, _request_timeout=10
        )
        return [parse_order(item) for item in found.get("items", [])]

    def message(self, name: str) -> str:
        obj: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, name, _request_timeout=10
        )
        return str((obj.get("status") or {}).get("message") or "")

    def wait_phase(self, name: str, phases: Collection[str], *, timeout: float) -> Order:
        """Waits until the agent wrote one of ``phases``; a Failed order raises."""
        deadline = time.monotonic() + timeout
        order = self.get(name)
        while order.phase not in phases:
            if order.phase in ("Failed", "Expired"):
                raise OrderFailed(f"order {name} on {order.node}: {self.message(name)}")
            if time.monotonic() > deadline:
                raise OrderFailed(
                    f"order {name} on {order.node} is {order.phase} after {timeout:.0f} s "
                    "(is the agent running on that node?)"
                )
            time.sleep(0.2)
            order = self.get(name)
        return order

    def delete(self, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, name, _request_timeout=10
            )
        except ApiException as e:
            if e.status != 404:
                raise
