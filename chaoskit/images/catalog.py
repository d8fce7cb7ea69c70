"""What the image factory builds: the Go programs, from pinned versions."""

from __future__ import annotations

from chaoskit import versions
from chaoskit.images.golang import GoProgram


def _k8s_version_flags() -> tuple[str, ...]:
    major, minor = versions.KUBERNETES.removeprefix("v").split(".")[:2]
    values = {
        "gitVersion": versions.KUBERNETES,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": versions.KUBERNETES_BUILD_DATE,
    }
    return tuple(
        f"{pkg}.{name}={value}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in values.items()
    )


KIND = GoProgram(
    name="kind",
    module="sigs.k8s.io/kind",
    version=versions.KIND,
    binaries=(("kind", "sigs.k8s.io/kind"),),
)

CRICTL = GoProgram(
    name="crictl",
    module="sigs.k8s.io/cri-tools",
    version=versions.CRI_TOOLS,
    binaries=(("crictl", "sigs.k8s.io/cri-tools/cmd/crictl"),),
    ldflags=(f"sigs.k8s.io/cri-tools/pkg/version.Version={versions.CRI_TOOLS}",),
    checksum_db=False,
)

KUBERNETES = GoProgram(
    name="kubernetes",
    module="k8s.io/kubernetes",
    version=versions.KUBERNETES,
    binaries=tuple(
        (cmd, f"k8s.io/kubernetes/cmd/{cmd}")
        for cmd in (
            "kubeadm",
            "kubelet",
            "kubectl",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-proxy",
        )
    ),
    ldflags=_k8s_version_flags(),
    replace_staging=versions.KUBERNETES_STAGING,
)

KUBECTL = GoProgram(
    name="kubectl",
    module="k8s.io/kubernetes",
    version=versions.KUBERNETES,
    binaries=(("kubectl", "k8s.io/kubernetes/cmd/kubectl"),),
    ldflags=_k8s_version_flags(),
    replace_staging=versions.KUBERNETES_STAGING,
)
"""kubectl on its own: what chaoskit applies manifests with, also where the node image is
pulled from upstream and the rest of Kubernetes is not built here."""

ETCD = GoProgram(
    name="etcd",
    module="go.etcd.io/etcd/server/v3",
    version=versions.ETCD,
    binaries=(
        ("etcd", "go.etcd.io/etcd/server/v3"),
        ("etcdctl", "go.etcd.io/etcd/etcdctl/v3"),
        ("etcdutl", "go.etcd.io/etcd/etcdutl/v3"),
    ),
    ldflags=(f"go.etcd.io/etcd/api/v3/version.GitSHA={versions.ETCD_GIT_SHA}",),
    requires=(
        ("go.etcd.io/etcd/etcdctl/v3", versions.ETCD),
        ("go.etcd.io/etcd/etcdutl/v3", versions.ETCD),
    ),
)

COREDNS = GoProgram(
    name="coredns",
    module="github.com/coredns/coredns",
    version=versions.COREDNS,
    binaries=(("coredns", "github.com/coredns/coredns"),),
    ldflags=(f"github.com/coredns/coredns/coremain.GitCommit={versions.COREDNS_GIT_COMMIT}",),
)

LOCAL_PATH_PROVISIONER = GoProgram(
    name="local-path-provisioner",
    module="github.com/rancher/local-path-provisioner",
    version=versions.LOCAL_PATH_PROVISIONER,
    binaries=(("local-path-provisioner", "github.com/rancher/local-path-provisioner"),),
    ldflags=(f"main.VERSION={versions.LOCAL_PATH_PROVISIONER}",),
    checksum_db=False,
)

FLANNEL = GoProgram(
    name="flannel",
    module="github.com/flannel-io/flannel",
    version=versions.FLANNEL,
    binaries=(("flanneld", "github.com/flannel-io/flannel"),),
    ldflags=(f"github.com/flannel-io/flannel/pkg/version.Version={versions.FLANNEL}",),
    cgo=True,
    checksum_db=False,
    # flanneld links every backend; the module proxy serves no v1.3 release of the Tencent
    # Cloud VPC SDK its go.mod asks for, and its API for the tencentvpc backend is unchanged
    # since v1.1 (a backend kind clusters never use).
    replaces=(("github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc", "v1.1.0"),),
)

KUBE_STATE_METRICS = GoProgram(
    name="kube-state-metrics",
    module="k8s.io/kube-state-metrics/v2",
    version=versions.KUBE_STATE_METRICS,
    binaries=(("kube-state-metrics", "k8s.io/kube-state-metrics/v2"),),
    checksum_db=False,
    ldflags=(
        f"github.com/prometheus/common/version.Version={versions.KUBE_STATE_METRICS}",
        "github.com/prometheus/common/version.Branch=release",
    ),
)

TRAEFIK = GoProgram(
    name="traefik",
    module="github.com/traefik/traefik/v3",
    version=versions.TRAEFIK,
    binaries=(("traefik", "./cmd/traefik"),),
    ldflags=(f"github.com/traefik/traefik/v3/pkg/version.Version={versions.TRAEFIK}",),
    in_module=True,
)

PROGRAMS: tuple[GoProgram, ...] = (
    KIND,
    CRICTL,
    KUBERNETES,
    KUBECTL,
    ETCD,
    COREDNS,
    LOCAL_PATH_PROVISIONER,
    FLANNEL,
    KUBE_STATE_METRICS,
    TRAEFIK,
)
