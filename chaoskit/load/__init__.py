"""Traffic for the experiments: Locust profiles run headless in processes of their own.

Locust monkey-patches the interpreter it is imported into (gevent), which the kubernetes
client and the rest of the harness must not see; so chaoskit never imports Locust. It starts
``python -m locust`` on a profile from ``loadprofiles/`` (one process, or a master and N
workers, here or as pods in the cluster), bounded in time, and reads back what the profile
wrote: per-second statistics on the harness's wall clock and every order the shop
acknowledged.

- :mod:`chaoskit.load.profiles`: finding a profile by name;
- :mod:`chaoskit.load.runner`: running it (``run`` or ``LoadRun`` for start/stop);
- :mod:`chaoskit.load.pods`: its workers as pods inside a kind cluster, the master on the host;
- :mod:`chaoskit.load.timeseries`: the per-second statistics as a pandas DataFrame.
"""

from __future__ import annotations
