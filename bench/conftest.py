"""Benchmarks are not tests: ``pytest bench`` collects nothing (``python -m bench`` runs them)."""

collect_ignore_glob = ["*"]
