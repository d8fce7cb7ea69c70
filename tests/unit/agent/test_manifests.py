"""The agent's objects: least privilege, every node, orders only through the API."""

from __future__ import annotations

from chaoskit.agent import manifests


def test_daemonset_runs_everywhere_with_named_capabilities_only() -> None:
    ds = manifests.daemonset("chaoskit/agent:1-abc")
    pod = ds["spec"]["template"]["spec"]
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["hostPID"] is True
    assert "hostNetwork" not in pod
    container = pod["containers"][0]
    assert container["image"] == "chaoskit/agent:1-abc"
    assert "ports" not in container  # orders come through the API, never a port
    security = container["securityContext"]
    assert security["privileged"] is False
    assert security["capabilities"] == {
        "drop": ["ALL"],
        "add": ["SYS_ADMIN", "SYS_PTRACE", "SYS_CHROOT", "KILL", "NET_ADMIN", "NET_RAW"],
    }
    paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert paths == {"/var/lib/chaoskit-agent", "/etc/kubernetes"}


def test_rbac_allows_reading_orders_writing_their_status_and_listing_pods_only() -> None:
    role = next(o for o in manifests.rbac() if o["kind"] == "Role")
    grants = {(tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]}
    assert grants == {
        (("faultorders",), ("get", "list", "watch")),
        (("faultorders/status",), ("get", "patch", "update")),
    }
    cluster_wide = [o for o in manifests.rbac() if o["kind"] == "ClusterRole"]
    assert [r for o in cluster_wide for r in o["rules"]] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}
    ]
    binding = next(o for o in manifests.rbac() if o["kind"] == "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == manifests.CLUSTER_ROLE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": manifests.NAME, "namespace": "chaoskit-system"}
    ]


def test_crd_requires_node_fault_and_expiry() -> None:
    crd = manifests.crd()
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["node", "fault", "expiresAt"]
    assert version["subresources"] == {"status": {}}
    assert crd["metadata"]["name"] == "faultorders.chaoskit.io"


def test_objects_are_applied_crd_and_namespace_first() -> None:
    kinds = [o["kind"] for o in manifests.all_objects("img")]
    assert kinds[:2] == ["CustomResourceDefinition", "Namespace"]
    assert kinds[-1] == "DaemonSet"
