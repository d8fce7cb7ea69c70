"""Files the harness moves to and from a node through the agent's pod, like ``kubectl cp``:
an exec stream through the API (no new port), base64 text on stdin or stdout.

    python3 -m nodeagent.files send NAME                 # base64 of the file on stdout
    python3 -m nodeagent.files receive NAME SIZE SHA256  # exactly SIZE bytes' base64 on stdin
    python3 -m nodeagent.files digest NAME               # "SIZE SHA256", or "missing"

Only plain names in :data:`FILES_DIR`. The receiver reads a known length (the Kubernetes
Python client cannot half-close an exec's stdin), checks the size and the SHA-256, and
only then renames the file into place: a name either holds the whole file or nothing.
The :class:`Decoder` is shared with the harness, which decodes what ``send`` writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

FILES_DIR = Path("/var/lib/chaoskit-agent/etcd-drill")
"""Inside the agent's hostPath, which the pod mounts at the node's own path: the same
folder for the agent's Python, for the node's commands (nsenter) and for this transport."""
PIECE = 3 * 16 * 1024
"""Bytes encoded at a time: a multiple of 3, so that pieces encode independently (no
padding but at the very end) and the base64 text can be cut anywhere."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class TransferFailed(Exception):
    """A file did not arrive whole (truncated, wrong size or digest, bad name)."""


def resolve(name: str, base: Path = FILES_DIR) -> Path:
    """``base/name`` for a plain name; anything else (a path, ``..``) is refused."""
    if not _NAME.fullmatch(name):
        raise TransferFailed(f"not a plain file name: {name!r}")
    return base / name


def encoded_length(size: int) -> int:
    """Characters of the base64 text of ``size`` bytes (padded, no newlines)."""
    return 4 * ((size + 2) // 3)


def digest(path: Path) -> tuple[int, str] | None:
    """(size, SHA-256 hex) of a file, or None if there is none."""
    sha = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as source:
            while chunk := source.read(1 << 20):
                sha.update(chunk)
                size += len(chunk)
    except FileNotFoundError:
        return None
    return size, sha.hexdigest()


def encode(source: BinaryIO, piece: int = PIECE) -> Iterator[bytes]:
    """The base64 text of ``source``, piece by piece."""
    if piece % 3:
        raise ValueError("piece must be a multiple of 3")
    while chunk := source.read(piece):
        yield base64.b64encode(chunk)


class Decoder:
    """Decodes base64 text cut anywhere into ``out``, counting and hashing what it wrote."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.size = 0
        self._sha = hashlib.sha256()
        self._rest = b""

    def feed(self, text: bytes) -> None:
        data = self._rest + text
        cut = len(data) - len(data) % 4
        try:
            chunk = base64.b64decode(data[:cut], validate=True)
        except binascii.Error as e:
            raise TransferFailed(f"not base64: {e}") from e
        self._rest = data[cut:]
        self.out.write(chunk)
        self._sha.update(chunk)
        self.size += len(chunk)

    def finish(self, size: int, sha256: str) -> None:
        """Raises unless exactly the file of ``size`` bytes and ``sha256`` came through."""
        if self._rest:
            raise TransferFailed(f"truncated base64 ({len(self._rest)} character(s) left over)")
        got = self._sha.hexdigest()
        if self.size != size or got != sha256:
            raise TransferFailed(
                f"received {self.size} bytes with SHA-256 {got[:12]}..., "
                f"expected {size} bytes with {sha256[:12]}..."
            )


def receive(stream: BinaryIO, target: Path, size: int, sha256: str) -> None:
    """Reads the base64 text of exactly ``size`` bytes from ``stream`` into ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    left = encoded_length(size)
    try:
        with part.open("wb") as out:
            decoder = Decoder(out)
            while left > 0:
                text = stream.read(min(left, 1 << 16))
                if not text:
                    raise TransferFailed(
                        f"the input ended {left} character(s) before the file's end"
                    )
                left -= len(text)
                decoder.feed(text)
            decoder.finish(size, sha256)
            out.flush()
            os.fsync(out.fileno())
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)


USAGE = "send NAME | receive NAME SIZE SHA256 | digest NAME"


def run(argv: list[str]) -> None:
    """One verb (see the module's docstring); raises on a bad call or a failed transfer."""
    if len(argv) < 2:
        raise TransferFailed(f"usage: {USAGE}")
    verb, name, *rest = argv
    path = resolve(name)
    if verb == "send" and not rest:
        with path.open("rb") as source:
            for text in encode(source):
                sys.stdout.buffer.write(text)
        sys.stdout.buffer.flush()
    elif verb == "receive" and len(rest) == 2:
        receive(sys.stdin.buffer, path, int(rest[0]), rest[1])
        print(f"received {rest[0]} {rest[1]}")
    elif verb == "digest" and not rest:
        found = digest(path)
        print(f"{found[0]} {found[1]}" if found else "missing")
    else:
        raise TransferFailed(f"usage: {USAGE}")


def main(argv: list[str]) -> int:
    try:
        run(argv)
    except (TransferFailed, OSError, ValueError) as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
