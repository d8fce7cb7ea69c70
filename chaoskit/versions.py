"""Pinned versions of everything chaoskit builds or downloads, in one place.

Python dependencies are pinned in ``pyproject.toml``; everything else is here. Kubernetes is
held at 1.34 because kubelet >= 1.35 refuses cgroup v1 hosts, and kind v0.30.0 is the kind
release that supports it. Changing a version here changes every cache key that uses it.
"""

from __future__ import annotations

from typing import Final

KUBERNETES: Final = "v1.34.4"
"""kube-apiserver, controller manager, scheduler, proxy, kubelet, kubeadm, kubectl."""
KUBERNETES_STAGING: Final = "v0.34.4"
"""The published k8s.io/* staging modules that match ``KUBERNETES``."""
KIND: Final = "v0.30.0"
CRI_TOOLS: Final = "v1.34.0"
ETCD: Final = "v3.6.5"
"""What ``kubeadm config images list`` asks for (image tag ``3.6.5-0``)."""
ETCD_IMAGE_TAG: Final = "3.6.5-0"
COREDNS: Final = "v1.12.1"
PAUSE: Final = "3.10.1"
LOCAL_PATH_PROVISIONER: Final = "v0.0.30"
DEBIAN_SUITE: Final = "bookworm"
KIND_HAPROXY_IMAGE: Final = "docker.io/kindest/haproxy:v20230606-42a2262b"
"""kind v0.30.0 runs its control-plane load balancer from exactly this image name."""
KUBERNETES_BUILD_DATE: Final = "2026-02-10T12:53:36Z"
"""Stamped into the Kubernetes binaries: the commit time of the v1.34.4 tag (from the
module proxy), fixed so that rebuilds are identical."""
ETCD_GIT_SHA: Final = "a061450"
"""The v3.6.5 commit, as `etcd --version` reports it."""
COREDNS_GIT_COMMIT: Final = "707c7c1"
UPSTREAM_NODE_IMAGE: Final = (
    "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
)
"""kind v0.30.0's own default node image, used where a container registry answers."""
FLANNEL: Final = "v0.28.10"
"""flanneld, chaoskit's cluster network where kind's kindnetd image cannot be had."""
LOCAL_PATH_PROVISIONER_IMAGE: Final = "docker.io/kindest/local-path-provisioner:v20250214-acbabc1a"
LOCAL_PATH_HELPER_IMAGE: Final = "docker.io/kindest/local-path-helper:v20241212-8ac705d0"
"""kind v0.30.0's default storage manifest names these two images."""
KUBE_STATE_METRICS: Final = "v2.16.0"
TRAEFIK: Final = "v3.4.0"
"""The ingress controller; the newest v3 whose whole build the module proxy serves."""
KAFKA: Final = "4.3.1"
"""Apache Kafka in KRaft mode, from Maven Central jars (4.4.0's kafka-tools jar is not served)."""
MARIADB: Final = "10.11"
"""Debian bookworm's MariaDB: the shop's MySQL-compatible database."""
PROMETHEUS_IMAGE_TAG: Final = "2"
"""Debian bookworm's Prometheus 2.42 (no Kubernetes service discovery: DNS SD is used)."""
