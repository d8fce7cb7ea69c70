"""chaoskit's node agent: applies fault orders on its node and undoes them at their expiry.

This package runs inside the agent's image (copied in as ``nodeagent``) and uses the
standard library only; the harness imports its ``orders`` module for the order format.
"""
