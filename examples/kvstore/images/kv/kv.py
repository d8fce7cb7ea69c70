"""A small durable key-value service, the example system of ``examples/kvstore``.

One program, two roles (standard library only)::

    python3 kv.py store --data /data [--port 8080] [--durability fsync|buffered]
    python3 kv.py proxy --store http://kv-store:8080 [--port 8080]

The **store** keeps every value in memory and in an append-only log on its volume, one
JSON line per write, and replays the log when it starts. ``PUT /kv/KEY`` (the body is the
value) answers 201; ``GET /kv/KEY`` answers 200 with the value, or 404; ``GET /healthz``
answers 200 once the log is replayed.

Its durability (``--durability``, or ``KV_DURABILITY``) is what the example's invariant
tests:

- ``fsync`` (the default): a write is appended, flushed and ``fsync``-ed before the 201, so
  an acknowledged write survives a killed process or a lost node;
- ``buffered``: a write is acknowledged from memory and reaches the log only when a
  background thread flushes, every ``--flush-interval`` seconds (10) and never at exit, so
  a killed store loses the last seconds of acknowledged writes. A deliberate bug: the
  ``kvstore-unsafe`` system runs it to show that the invariant catches it.

The **proxy** is stateless: it forwards ``/kv/...`` to the store and answers what the store
answered, or 502 when it cannot reach it.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

log = logging.getLogger("kv")

Durability = Literal["fsync", "buffered"]
DURABILITIES: tuple[Durability, ...] = ("fsync", "buffered")
LOG_FILE = "kv.log"
KEY = re.compile(r"[A-Za-z0-9._-]{1,200}")
MAX_VALUE_BYTES = 1 << 20
PROXY_TIMEOUT_S = 5.0


class Store:
    """The values in memory, and the log that makes them durable."""

    def __init__(self, folder: Path, durability: Durability) -> None:
        self.durability = durability
        self.path = folder / LOG_FILE
        self.values: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        """Buffered mode: log lines acknowledged, not yet written."""
        folder.mkdir(parents=True, exist_ok=True)
        self._replay()
        self._log = self.path.open("ab")
        # A log file just created must survive a crash too: its directory entry is synced.
        _fsync_folder(folder)

    def _replay(self) -> None:
        """Reads the log into memory. A last line cut short by a crash (a write never
        acknowledged in fsync mode) is dropped, and cut off the file so that the next
        write starts on a line of its own."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            record = _record(line)
            if record is None:
                break
            key, value = record
            self.values[key] = value
            good += len(line)
        if good < len(data):
            torn = len(data) - good
            log.warning("log %s: dropped %d bytes of a torn last write", self.path, torn)
            with self.path.open("r+b") as file:
                file.truncate(good)
                os.fsync(file.fileno())
        log.info("replayed %d keys from %s", len(self.values), self.path)

    def put(self, key: str, value: bytes) -> None:
        """Stores ``value``; returns once it is as durable as the mode promises."""
        line = json.dumps({"key": key, "value": base64.b64encode(value).decode()}).encode()
        with self._lock:
            if self.durability == "fsync":
                self._log.write(line + b"\n")
                self._log.flush()
                os.fsync(self._log.fileno())
            else:
                self._pending.append(line + b"\n")
            self.values[key] = value

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self.values.get(key)

    def flush_pending(self) -> None:
        """Buffered mode: writes what was acknowledged since the last flush."""
        with self._lock:
            pending, self._pending = self._pending, []
            if pending:
                self._log.write(b"".join(pending))
                self._log.flush()
                os.fsync(self._log.fileno())

    def flush_every(self, seconds: float) -> None:
        def loop() -> None:
            while True:
                time.sleep(seconds)
                self.flush_pending()

        threading.Thread(target=loop, name="flusher", daemon=True).start()


def _record(line: bytes) -> tuple[str, bytes] | None:
    """The key and value of a log line; None for a line cut short or garbled."""
    if not line.endswith(b"\n"):
        return None
    try:
        record = json.loads(line)
        return str(record["key"]), base64.b64decode(record["value"], validate=True)
    except (ValueError, KeyError, TypeError):
        return None


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Handler(BaseHTTPRequestHandler):
    """What both roles share: HTTP/1.1 keep-alive, the key in the path, a short log."""

    protocol_version = "HTTP/1.1"
    server_version = "kv/1"

    def answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def key(self) -> str | None:
        """The key of ``/kv/KEY``; None when the path is not one (answered 404 or 400)."""
        prefix, _, key = self.path.partition("/kv/")
        if prefix or not key:
            self.answer(HTTPStatus.NOT_FOUND, b"no such path\n")
            return None
        if not KEY.fullmatch(key):
            self.answer(HTTPStatus.BAD_REQUEST, b"a key is 1-200 of A-Z a-z 0-9 . _ -\n")
            return None
        return key

    def body(self) -> bytes | None:
        """The request's body; None when it cannot be read (answered 411 or 413)."""
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.answer(HTTPStatus.LENGTH_REQUIRED, b"Content-Length required\n")
            return None
        if int(length) > MAX_VALUE_BYTES:
            self.close_connection = True
            self.answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"a value is at most 1 MiB\n")
            return None
        return self.rfile.read(int(length))

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class StoreHandler(Handler):
    store: Store

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.answer(HTTPStatus.OK, b"ok\n")
            return
        key = self.key()
        if key is None:
            return
        value = self.store.get(key)
        if value is None:
            self.answer(HTTPStatus.NOT_FOUND, b"no such key\n")
        else:
            self.answer(HTTPStatus.OK, value, "application/octet-stream")

    def do_PUT(self) -> None:
        key = self.key()
        if key is None:
            return
        value = self.body()
        if value is None:
            return
        self.store.put(key, value)
        self.answer(HTTPStatus.CREATED)


class ProxyHandler(Handler):
    store: tuple[str, int]
    """The store's host and port."""

    def do_GET(self) -> None:
        if self.path == "/healthz":
            # Ready whether the store is or not: the proxy answers 502 for it meanwhile.
            self.answer(HTTPStatus.OK, b"ok\n")
            return
        if self.key() is not None:
            self.forward("GET", None)

    def do_PUT(self) -> None:
        if self.key() is None:
            return
        value = self.body()
        if value is not None:
            self.forward("PUT", value)

    def forward(self, method: str, body: bytes | None) -> None:
        host, port = self.store
        connection = http.client.HTTPConnection(host, port, timeout=PROXY_TIMEOUT_S)
        try:
            connection.request(method, self.path, body=body)
            response = connection.getresponse()
            status, answer = response.status, response.read()
            content_type = response.getheader("Content-Type", "text/plain")
        except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out, cut
            self.answer(HTTPStatus.BAD_GATEWAY, f"store unreachable: {e}\n".encode())
            return
        finally:
            connection.close()
        self.answer(status, answer, content_type)


def serve(handler: type[Handler], port: int) -> None:
    server = ThreadingHTTPServer(("", port), handler)
    server.daemon_threads = True

    # PID 1 in a container ignores SIGTERM unless it handles it: stop at once (a store in
    # fsync mode has nothing to write; a buffered one loses what is pending, as it would
    # when killed).
    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    log.info("listening on port %d", server.server_address[1])
    server.serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kv.py", description="A small durable key-value service.")
    roles = parser.add_subparsers(dest="role", required=True)
    store = roles.add_parser("store", help="the durable store")
    store.add_argument("--data", type=Path, required=True, help="folder of the log")
    store.add_argument(
        "--durability",
        choices=DURABILITIES,
        default=os.environ.get("KV_DURABILITY", "fsync"),
        help="fsync: durable before the answer (default, or KV_DURABILITY); buffered: not",
    )
    store.add_argument("--flush-interval", type=float, default=10.0, help="buffered: seconds")
    proxy = roles.add_parser("proxy", help="the stateless proxy in front of the store")
    proxy.add_argument("--store", required=True, help="the store's URL (http://HOST:PORT)")
    for role in (store, proxy):
        role.add_argument("--port", type=int, default=8080, help="0: any free port")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    if args.role == "store":
        if args.durability not in DURABILITIES:
            parser.error(f"KV_DURABILITY must be one of {', '.join(DURABILITIES)}")
        StoreHandler.store = Store(args.data, args.durability)
        if args.durability == "buffered":
            StoreHandler.store.flush_every(args.flush_interval)
        log.info("store: durability %s, log %s", args.durability, StoreHandler.store.path)
        serve(StoreHandler, args.port)
    else:
        url = urllib.parse.urlsplit(args.store)
        if url.scheme != "http" or not url.hostname or url.path.strip("/"):
            parser.error(f"--store must be http://HOST[:PORT], not {args.store!r}")
        ProxyHandler.store = (url.hostname, url.port or 80)
        serve(ProxyHandler, args.port)


if __name__ == "__main__":
    main()
