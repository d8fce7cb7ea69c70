"""The image factory: kind, Kubernetes, etcd, CoreDNS, the CNI and the node image, built
from package registries where no container registry answers (see ``factory``)."""

from __future__ import annotations
