"""Which cluster faults may touch, and which namespaces in it: chaoskit's safety rails.

Faults run only against kind clusters chaoskit made (``chaoskit cluster up``), reached
through the kubeconfig chaoskit wrote for them. Any other kube context is refused unless
the user names it with ``--allow-context NAME``. Faults on namespaced objects (pods, a
namespace the etcd drill deletes) run only in the namespaces of an allowlist.

What a run changed is recorded under the target's :attr:`Target.key`: the cluster's name for
chaoskit's own clusters, ``context.<context>`` for an allowed context (a dot, which
chaoskit's cluster names never hold, so the two never share a state file). ``chaoskit run``
and ``chaoskit recover`` given the same kubeconfig and context find the same record.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from chaoskit.cluster.config import DEFAULT_NAME
from chaoskit.cluster.lifecycle import ClusterDir, recorded
from chaoskit.errors import InvalidInput
from chaoskit.faults.errors import InvalidParam
from chaoskit.settings import Settings

if TYPE_CHECKING:
    from kubernetes import client

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACES = ("shop",)
"""The e-commerce topology's namespace: the allowlist when none is given."""
KIND_CONTEXT_PREFIX = "kind-"
FOREIGN_KEY_PREFIX = "context."
"""Keys of allowed contexts; chaoskit's cluster names hold no dot, so no key is both."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Target:
    """A cluster faults may touch, and the namespaces they may touch in it."""

    cluster: str
    """kind's name for the cluster; its node containers carry it as a label."""
    kubeconfig: Path
    context: str
    namespaces: tuple[str, ...]
    """The allowlist: namespaced faults and the oracle act only here."""
    managed: bool
    """True if chaoskit made the cluster; False if allowed with --allow-context."""

    @property
    def key(self) -> str:
        """The name of the target's state file and fault log (see the module's doc)."""
        return self.cluster if self.managed else foreign_key(self.context)

    def api(self, *, retries: bool = True) -> client.ApiClient:
        """A client of the target; ``retries=False`` for watchers that retry on their own
        (urllib3's retries would only add noise while the API is down)."""
        from chaoskit.cluster.kubeclient import new_client  # noqa: PLC0415 - heavy: only when acting

        # Every informer holds a watch connection; the default pool of 10 is too small.
        # Every request has a timeout (chaoskit.cluster.kubeclient).
        return new_client(self.kubeconfig, context=self.context, retries=retries, pool=64)

    def check_namespace(self, namespace: str, field: str = "namespace") -> None:
        if namespace not in self.namespaces:
            allowed = ", ".join(self.namespaces) or "none"
            raise InvalidParam(
                field,
                f"namespace {namespace!r} is not in the allowlist ({allowed}): "
                f"add it with --namespace {namespace} or the configuration key "
                "chaoskit_namespaces",
            )


def foreign_key(context: str) -> str:
    """``context.<context>``, as a file name: characters a file name must not hold become
    ``_``, and then a hash of the real name keeps two such contexts apart."""
    safe = _UNSAFE.sub("_", context)[:100]
    if safe != context:
        safe += "-" + hashlib.sha256(context.encode()).hexdigest()[:8]
    return FOREIGN_KEY_PREFIX + safe


def chaoskit_clusters(settings: Settings) -> list[str]:
    root = settings.cache_dir / "clusters"
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob("*/cluster.json"))


def _kubeconfig(path: Path, option: str = "") -> dict[str, Any]:
    """The kubeconfig's document; ``option`` (``--kubeconfig``) names where the path came
    from in an error."""
    where = f"{option} {path}" if option else str(path)
    if not path.is_file():
        what = "no such file" if not path.exists() else "not a file"
        raise InvalidInput(f"{where}: {what}: give the path of a kubeconfig")
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput(f"{where}: cannot be read: {e}") from e
    except yaml.YAMLError as e:
        raise InvalidInput(f"{where}: not a valid kubeconfig: {e}") from e
    if not isinstance(doc, dict):
        raise InvalidInput(f"{where}: not a valid kubeconfig (not a mapping)")
    return doc


def _contexts(doc: dict[str, Any]) -> list[str]:
    items = doc.get("contexts")
    if not isinstance(items, list):
        return []
    return [str(c["name"]) for c in items if isinstance(c, dict) and c.get("name")]


def _context(doc: dict[str, Any], path: Path, given: str | None) -> str:
    """The context to use: ``given`` (``--context``), else the file's current one; refused
    if the kubeconfig has no such context."""
    known = _contexts(doc)
    ctx = given or str(doc.get("current-context") or "")
    if not ctx:
        raise InvalidInput(f"{path}: no current context: name one with --context")
    if ctx not in known:
        flag = f"--context {ctx}" if given else f"{path}: current-context {ctx}"
        raise InvalidInput(
            f"{flag}: no such context in {path} (contexts: {', '.join(known) or 'none'})"
        )
    return ctx


def _server(doc: dict[str, Any], context: str) -> str | None:
    contexts = {c.get("name"): c.get("context", {}) for c in doc.get("contexts") or []}
    cluster = contexts.get(context, {}).get("cluster")
    for item in doc.get("clusters") or []:
        if item.get("name") == cluster:
            return str(item.get("cluster", {}).get("server", "")) or None
    return None


def normalize_namespaces(namespaces: Iterable[str] | str | None) -> tuple[str, ...]:
    if namespaces is None:
        return DEFAULT_NAMESPACES
    if isinstance(namespaces, str):
        namespaces = namespaces.split(",")
    result = tuple(dict.fromkeys(n.strip() for n in namespaces if n and n.strip()))
    return result or DEFAULT_NAMESPACES


def resolve_target(
    settings: Settings,
    *,
    cluster: str | None = None,
    kubeconfig: Path | None = None,
    context: str | None = None,
    allow_context: str | None = None,
    namespaces: Iterable[str] | str | None = None,
) -> Target:
    """The cluster to act on; refuses contexts that are not chaoskit's kind clusters."""
    allowlist = normalize_namespaces(namespaces)
    own = chaoskit_clusters(settings)
    if kubeconfig is None:
        name = cluster or DEFAULT_NAME
        if recorded(settings, name) is None:
            known = ", ".join(own) or "none"
            raise InvalidInput(
                f"no chaoskit cluster named {name!r} (chaoskit's clusters: {known}): "
                f"create it with 'chaoskit cluster up --name {name}'"
            )
        kubeconfig = ClusterDir.of(settings, name).kubeconfig
        doc = _kubeconfig(kubeconfig)
        ctx = _context(doc, kubeconfig, context)
        if ctx not in (f"{KIND_CONTEXT_PREFIX}{name}", allow_context):
            raise InvalidInput(
                f"kube context {ctx!r} is not chaoskit's cluster {name!r}: "
                f"pass --allow-context {ctx} to run faults against it anyway"
            )
        return Target(
            name, kubeconfig, ctx, allowlist, managed=ctx == f"{KIND_CONTEXT_PREFIX}{name}"
        )

    doc = _kubeconfig(kubeconfig, "--kubeconfig")
    ctx = _context(doc, kubeconfig, context)
    kind_name = ctx.removeprefix(KIND_CONTEXT_PREFIX) if ctx.startswith(KIND_CONTEXT_PREFIX) else ""
    if kind_name in own:
        mine = _kubeconfig(ClusterDir.of(settings, kind_name).kubeconfig)
        if _server(mine, ctx) == _server(doc, ctx):
            return Target(kind_name, kubeconfig, ctx, allowlist, managed=True)
    if allow_context is not None and ctx == allow_context:
        logger.warning("running faults against context %r, which chaoskit did not make", ctx)
        return Target(kind_name or ctx, kubeconfig, ctx, allowlist, managed=False)
    known = ", ".join(f"{KIND_CONTEXT_PREFIX}{n}" for n in own) or "none"
    other = f" (--allow-context names {allow_context!r})" if allow_context else ""
    raise InvalidInput(
        f"--kubeconfig {kubeconfig}: kube context {ctx!r} is not one of chaoskit's kind "
        f"clusters ({known}){other}: pass --allow-context {ctx} to run faults against it "
        "anyway"
    )
