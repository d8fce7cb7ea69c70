"""Applies ``schema.sql`` in the background until it succeeds (the database may start later)."""

from __future__ import annotations

import threading

from .background import Loop
from .config import Settings
from .db import Database


class SchemaSetup:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.done = False
        self.loop = Loop("schema", self._step)

    def _step(self, stopping: threading.Event) -> float:
        self.db.apply_schema(self.settings.flash_sale_stock)
        self.done = True
        stopping.set()  # nothing more to do: end the loop
        return 0.0
