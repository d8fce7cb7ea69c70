"""``chaoskit init``: starter files for a repository of the user's own.

``scan`` looks at the repository (what deploys it, its Dockerfiles, namespaces, NodePort
Services, a Locust file); ``files`` writes the system file, a suite, a kind config, an
example invariant check and a GitHub Actions workflow from that, all of them or none
(:func:`chaoskit.scaffold.files.init_repository`).
"""
