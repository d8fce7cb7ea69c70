"""``python3 -m nodeagent``: the agent of one node (settings from the pod's environment)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

from .daemon import Agent
from .host import Host
from .kube import Api
from .store import Store

logger = logging.getLogger("nodeagent")

TERMINATION_LOG = Path("/dev/termination-log")


def fail(message: str) -> int:
    """Exits with a reason the pod's status shows (``chaoskit agent install`` names it)."""
    logger.error(message)
    with contextlib.suppress(OSError):
        TERMINATION_LOG.write_text(message)
    return 1


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("AGENT_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    node = os.environ.get("NODE_NAME", "")
    if not node:
        return fail("NODE_NAME is not set (the DaemonSet passes spec.nodeName)")
    host = Host(
        node=node,
        kubernetes_dir=Path(os.environ.get("AGENT_KUBERNETES_DIR", "/host/etc/kubernetes")),
    )
    # Without the node's namespaces the agent can do nothing: say so and stop, so that the
    # pod is not Ready and install names the reason.
    probe = host.run("systemctl", "show", "--property=Version", check=False)
    if probe.returncode != 0:
        reason = (probe.stderr or probe.stdout).strip().splitlines()
        return fail(
            f"cannot reach the node's systemd: {reason[-1] if reason else probe.returncode}"
        )
    api = Api.in_cluster(
        os.environ.get("KUBERNETES_SERVICE_HOST", ""),
        os.environ.get("KUBERNETES_SERVICE_PORT", "443"),
    )
    store = Store(Path(os.environ.get("AGENT_STATE", "/var/lib/chaoskit-agent/orders.json")))
    heartbeat = Path(os.environ.get("AGENT_HEARTBEAT", "/tmp/agent-alive"))  # noqa: S108 - the pod's own /tmp
    agent = Agent(host, api, store, heartbeat)
    agent.start()
    logger.info("agent on node %s: %d order(s) in %s", node, len(agent.entries), store.path)
    agent.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
