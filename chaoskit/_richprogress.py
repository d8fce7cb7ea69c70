"""Progress drawn with rich on the terminal (the CLI's implementation of Progress)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console


class RichProgress:
    def __init__(self, console: Console) -> None:
        self.console = console

    @contextmanager
    def task(self, description: str) -> Iterator[None]:
        started = time.monotonic()
        if not self.console.is_terminal:
            # Logs (CI) get a line when long work starts, not only when it ends.
            self.console.print(f"… {description}", highlight=False)
        with self.console.status(description):
            try:
                yield
            except BaseException:
                self.console.print(f"[red]✗[/] {description}", highlight=False)
                raise
        elapsed = time.monotonic() - started
        self.console.print(f"[green]✓[/] {description} [dim]({elapsed:.1f} s)[/]", highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"  {message}", highlight=False, style="dim")
