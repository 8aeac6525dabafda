"""Benchmarks of wes-gateway beside sapporo, the peer WES server: ``python -m bench``."""
