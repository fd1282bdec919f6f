"""The command line of the benchmarks measured in alternating rounds (``bench.floor``,
``bench.event_costs``): ``--count`` and ``--rounds``, our bytecode written first."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from bench.__main__ import compile_bytecode


def rounds_main(
    module: str,
    doc: str | None,
    run: Callable[[int, int], Coroutine[Any, Any, None]],
    count: int,
    what: str,
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{module}", description=doc)
    parser.add_argument("--count", type=int, default=count, help=f"{what} per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    compile_bytecode()
    asyncio.run(run(args.count, args.rounds))
