"""`python -m tests.bench NAME [options]`: run one benchmark, print its JSON as the last line
and write `.bench/NAME.json` (run from the repository root with .venv/bin/python).

Benchmarks measure speed; tests never do (no timed assertions anywhere else).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

BENCHMARKS = {
    "call": "tests.bench.call",
    "customers": "tests.bench.customers",
    "sync": "tests.bench.sync",
    "import_rows": "tests.bench.import_rows",
    "throughput": "tests.bench.throughput",
}
BENCH_DIR = Path(".bench")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m tests.bench", add_help=False)
    parser.add_argument("name", nargs="?", choices=sorted(BENCHMARKS))
    known, rest = parser.parse_known_args(args)
    if known.name is None:
        print("usage: python -m tests.bench {" + ",".join(sorted(BENCHMARKS)) + "} [options]",
              file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[known.name])
    result = module.run(rest, BENCH_DIR)
    BENCH_DIR.mkdir(exist_ok=True)
    out = BENCH_DIR / f"{known.name}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
