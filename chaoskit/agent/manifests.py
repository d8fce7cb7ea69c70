"""The objects that install the agent: CRD, namespace, RBAC and the DaemonSet.

Plain dicts, applied with ``kubectl apply``; ``remove`` deletes them in reverse order.
"""

from __future__ import annotations

from typing import Any

from chaoskit.agent.nodeagent.orders import GROUP, KIND, NAMESPACE, PLURAL, VERSION

NAME = "chaoskit-agent"
APP_LABEL = {"app.kubernetes.io/name": NAME}
STATE_DIR = "/var/lib/chaoskit-agent"
KUBERNETES_DIR = "/etc/kubernetes"
CAPABILITIES = ("SYS_ADMIN", "SYS_PTRACE", "SYS_CHROOT", "KILL", "NET_ADMIN", "NET_RAW")
"""setns() into PID 1's mount namespace needs SYS_ADMIN and SYS_CHROOT, opening
/proc/1/ns/* needs SYS_PTRACE, signalling other users' processes needs KILL, iptables and
tc rules in a pod's network namespace need NET_ADMIN, and iptables' legacy backend opens a
raw socket, which needs NET_RAW (why: chaoskit/agent/README.md)."""


def crd() -> dict[str, Any]:
    string = {"type": "string"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": "faultorder",
                "kind": KIND,
                "listKind": f"{KIND}List",
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Node", "type": "string", "jsonPath": ".spec.node"},
                        {"name": "Fault", "type": "string", "jsonPath": ".spec.fault"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Expires", "type": "string", "jsonPath": ".spec.expiresAt"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["node", "fault", "expiresAt"],
                                    "properties": {
                                        "node": {**string, "minLength": 1},
                                        "fault": {**string, "minLength": 1},
                                        "params": {
                                            "type": "object",
                                            "additionalProperties": string,
                                        },
                                        "expiresAt": {**string, "format": "date-time"},
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {
                                        "phase": {
                                            **string,
                                            "enum": [
                                                "Pending",
                                                "Applied",
                                                "Undone",
                                                "Failed",
                                                "Expired",
                                            ],
                                        },
                                        "message": string,
                                        "updated": {**string, "format": "date-time"},
                                        "observedExpiresAt": {**string, "format": "date-time"},
                                        "info": {
                                            "type": "object",
                                            "additionalProperties": string,
                                        },
                                    },
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "chaoskit"}},
    }


CLUSTER_ROLE = f"{NAME}-pods"
"""The agent's only cluster-wide right: listing pods, to count the ones its node's kubelet
evicted (a node memory pressure ends after so many)."""


def rbac() -> list[dict[str, Any]]:
    """The agent reads its node's orders and writes their status, and lists pods; nothing
    else."""
    meta = {"name": NAME, "namespace": NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list", "watch"]},
                {
                    "apiGroups": [GROUP],
                    "resources": [f"{PLURAL}/status"],
                    "verbs": ["get", "patch", "update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": CLUSTER_ROLE, "labels": {"app.kubernetes.io/part-of": "chaoskit"}},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": CLUSTER_ROLE, "labels": {"app.kubernetes.io/part-of": "chaoskit"}},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": CLUSTER_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}],
        },
    ]


def daemonset(image: str, *, pull_policy: str = "Never") -> dict[str, Any]:
    """One agent per node, control planes and tainted nodes included."""
    heartbeat = "/tmp/agent-alive"  # noqa: S108 - the container's own /tmp
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": APP_LABEL},
        "spec": {
            "selector": {"matchLabels": APP_LABEL},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "100%"},
            },
            "template": {
                "metadata": {"labels": APP_LABEL},
                "spec": {
                    "serviceAccountName": NAME,
                    "hostPID": True,
                    "priorityClassName": "system-node-critical",
                    "tolerations": [{"operator": "Exists"}],
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "agent",
                            "image": image,
                            "imagePullPolicy": pull_policy,
                            "env": [
                                {
                                    "name": "NODE_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                },
                                {"name": "AGENT_STATE", "value": f"{STATE_DIR}/orders.json"},
                                {"name": "AGENT_KUBERNETES_DIR", "value": "/host/etc/kubernetes"},
                                {"name": "AGENT_HEARTBEAT", "value": heartbeat},
                            ],
                            "securityContext": {
                                "runAsUser": 0,
                                "privileged": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"], "add": list(CAPABILITIES)},
                            },
                            "readinessProbe": {
                                "exec": {
                                    "command": [
                                        "sh",
                                        "-c",
                                        f"test $(($(date +%s) - $(stat -c %Y {heartbeat}))) -lt 15",
                                    ]
                                },
                                "periodSeconds": 5,
                            },
                            "resources": {
                                "requests": {"cpu": "5m", "memory": "24Mi"},
                                "limits": {"memory": "64Mi"},
                            },
                            "volumeMounts": [
                                {"name": "state", "mountPath": STATE_DIR},
                                {"name": "kubernetes", "mountPath": "/host/etc/kubernetes"},
                                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "state",
                            "hostPath": {"path": STATE_DIR, "type": "DirectoryOrCreate"},
                        },
                        {
                            "name": "kubernetes",
                            "hostPath": {"path": KUBERNETES_DIR, "type": "Directory"},
                        },
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                    ],
                },
            },
        },
    }


def all_objects(image: str, *, pull_policy: str = "Never") -> list[dict[str, Any]]:
    """In apply order (the CRD and namespace before what lives in them)."""
    return [crd(), namespace(), *rbac(), daemonset(image, pull_policy=pull_policy)]
