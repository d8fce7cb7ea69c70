"""Suites: many experiments x trials under load against one cluster, and their report.

``spec`` reads and checks suite files; ``trial`` runs one experiment under load and judges
it (experiment outcome, load, ledger, SLOs); ``runner`` prepares the cluster and topology and
runs every trial, then writes the report (:mod:`chaoskit.report`).
"""
