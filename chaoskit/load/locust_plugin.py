"""Loaded by chaoskit's load runner beside every Locust file (``locust -f FILE,THIS``), so
that the per-second series and the acknowledged operations are recorded without the file
importing anything of chaoskit.

It imports the recorder by its package name: a Locust file that imports it as well (for
:func:`chaoskit.load.recorder.acknowledge`, or the shop's profiles) shares the one copy, and
each request is counted once.
"""

import chaoskit.load.recorder  # noqa: F401 - registers its listeners on Locust's events
