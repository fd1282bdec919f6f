"""Benchmarks: figures for docs/BENCHMARKS.md, not pass/fail tests.

Run ``make bench`` (small sizes) or ``python -m bench --help`` for the full sizes. Every
server is started here on 127.0.0.1 and stopped at the end; nothing is left running.
"""
