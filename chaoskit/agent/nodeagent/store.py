"""The agent's local copy of the orders it acted on: one JSON file on the node (hostPath).

It outlives the agent's container and the API server: an agent that restarts, or cannot
reach the API, still knows what it changed and when each change expires. Writes go to a
temporary file that replaces the old one, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .orders import Entry, OrderInvalid

logger = logging.getLogger(__name__)


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Entry]:
        """The entries by uid; an unreadable file is kept aside (never silently dropped)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
            entries = [Entry.from_json(item) for item in data.get("orders", [])]
        except (ValueError, KeyError, TypeError, AttributeError, OrderInvalid) as e:
            aside = self.path.with_suffix(".damaged")
            self.path.replace(aside)
            logger.error("local order file %s is damaged (%s): kept as %s", self.path, e, aside)
            return {}
        return {e.uid: e for e in entries}

    def save(self, entries: dict[str, Entry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {"orders": [e.to_json() for e in entries.values()]}
        with tmp.open("w") as out:
            json.dump(body, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
