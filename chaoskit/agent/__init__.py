"""chaoskit's node agent: a DaemonSet that applies fault orders below the Kubernetes API.

``nodeagent`` is what runs in the agent's pods (standard library only, its own image);
``manifests`` the objects that install it; ``install`` installs, checks and removes it;
``client`` creates, renews and releases orders. See README.md.
"""
