"""Files to and from a node through its agent's pod, like ``kubectl cp``: an exec stream
through the API, no new port. The agent's image runs the other end
(:mod:`chaoskit.agent.nodeagent.files`); names are plain names in the agent's drill folder.

Both directions carry base64 text and check the size and SHA-256 of what arrived: the
harness's copy before it is used, the node's copy before it is renamed into place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream
from websocket import WebSocketException

from chaoskit.agent import install
from chaoskit.agent.nodeagent.files import PIECE, Decoder, TransferFailed, encode
from chaoskit.agent.nodeagent.orders import NAMESPACE
from chaoskit.errors import OperationFailed

logger = logging.getLogger(__name__)

CONTAINER = "agent"
MODULE = ("python3", "-m", "nodeagent.files")
TIMEOUT = 600.0
"""Seconds for one file (a snapshot of a few hundred MB through the API server)."""


class CopyFailed(OperationFailed):
    """A file did not arrive whole, or the node's agent pod could not be reached."""


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str


def agent_pod(api: client.ApiClient, node: str) -> str:
    """The name of the agent's pod on ``node``."""
    for agent in install.node_agents(api):
        if agent.node == node and agent.pod:
            return agent.pod
    raise CopyFailed(f"no chaoskit agent pod on node {node}")


def _open(api: client.ApiClient, pod: str, argv: list[str], *, stdin: bool) -> Any:
    try:
        return stream(
            client.CoreV1Api(api).connect_get_namespaced_pod_exec,
            pod,
            NAMESPACE,
            container=CONTAINER,
            command=[*MODULE, *argv],
            stdin=stdin,
            stdout=True,
            stderr=True,
            tty=False,
            _preload_content=False,
        )
    except ApiException as e:
        # Needs "create pods/exec" in the agent's namespace, as kubectl cp does.
        raise CopyFailed(f"exec into {NAMESPACE}/{pod}: {e.reason}") from e


def _frames(resp: Any, what: str, deadline: float) -> Iterator[tuple[str, str]]:
    """(stdout, stderr) text as it arrives, until the command ended."""
    while resp.is_open():
        if time.monotonic() > deadline:
            resp.close()
            raise CopyFailed(f"{what}: no end within {TIMEOUT:.0f} s")
        resp.update(timeout=1)
        # timeout=0: a read without one waits for the next frame, of any channel.
        yield resp.read_stdout(timeout=0) or "", resp.read_stderr(timeout=0) or ""
    # A read takes in every frame that is there, of any channel, up to the end: what the
    # last one brought in is still to be read.
    yield resp.read_stdout(timeout=0) or "", resp.read_stderr(timeout=0) or ""


def _finish(resp: Any, what: str, deadline: float) -> str:
    """Waits until the command ended; returns its stdout; raises unless it exited 0."""
    out: list[str] = []
    err: list[str] = []
    for text, error in _frames(resp, what, deadline):
        out.append(text)
        err.append(error)
    code = resp.returncode
    if code != 0:
        detail = "".join(err).strip().splitlines()
        raise CopyFailed(f"{what}: {detail[-1] if detail else f'exit {code}'}")
    return "".join(out)


def digest(api: client.ApiClient, node: str, name: str) -> Digest | None:
    """Size and SHA-256 of ``name`` on ``node``, or None if it has none."""
    resp = _open(api, agent_pod(api, node), ["digest", name], stdin=False)
    text = _finish(resp, f"reading {name} on {node}", time.monotonic() + 60).strip()
    return parse_digest(text)


def parse_digest(text: str) -> Digest | None:
    """``digest``'s answer: "SIZE SHA256", or "missing"."""
    if text == "missing":
        return None
    size, _, sha = text.partition(" ")
    if not size.isdigit() or len(sha) != 64:
        raise CopyFailed(f"unexpected digest answer {text[:80]!r}")
    return Digest(int(size), sha)


def fetch(api: client.ApiClient, node: str, name: str, dest: Path, expected: Digest) -> None:
    """Copies ``name`` from ``node`` to ``dest``; ``dest`` exists only if it is whole."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    what = f"copying {name} from {node}"
    deadline = time.monotonic() + TIMEOUT
    try:
        resp = _open(api, agent_pod(api, node), ["send", name], stdin=False)
        err: list[str] = []
        with part.open("wb") as out:
            decoder = Decoder(out)
            for text, error in _frames(resp, what, deadline):
                decoder.feed(text.encode("ascii"))
                err.append(error)
            if resp.returncode != 0:
                detail = "".join(err).strip().splitlines()
                raise CopyFailed(f"{what}: {detail[-1] if detail else 'failed'}")
            decoder.finish(expected.size, expected.sha256)
        part.replace(dest)
    except TransferFailed as e:
        raise CopyFailed(f"{what}: {e}") from e
    finally:
        part.unlink(missing_ok=True)


def push(api: client.ApiClient, node: str, source: Path, name: str, expected: Digest) -> bool:
    """Copies ``source`` to ``name`` on ``node`` (which checks size and SHA-256 before it
    keeps it); False if the node had that very file already."""
    if digest(api, node, name) == expected:
        return False
    what = f"copying {name} to {node}"
    resp = _open(
        api,
        agent_pod(api, node),
        ["receive", name, str(expected.size), expected.sha256],
        stdin=True,
    )
    try:
        with source.open("rb") as src:
            for text in encode(src, PIECE):
                resp.write_stdin(text.decode("ascii"))
    except (OSError, WebSocketException) as e:
        # The receiver stopped reading (it failed): its own message says why.
        logger.debug("%s: writing stopped: %s", what, e)
    answer = _finish(resp, what, time.monotonic() + TIMEOUT)
    if f"received {expected.size} {expected.sha256}" not in answer:
        raise CopyFailed(f"{what}: unexpected answer {answer.strip()[:80]!r}")
    return True
