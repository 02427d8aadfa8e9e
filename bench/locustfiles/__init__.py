"""Locustfiles of the load-generator efficiency benchmark (bench/loadgen.py)."""
