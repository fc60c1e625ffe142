"""What importing the public entry points costs: `import qa`, the HTTP app, and the MCP server (the SDK with it).

    python benchmarks/import_cost.py [--runs 7]

Each import runs in a fresh interpreter (``python -c``, this checkout on PYTHONPATH), timed inside it with
``time.perf_counter`` around the import alone, so interpreter start-up is left out. Prints, per entry point, the
median over ``--runs`` runs in seconds and whether PyTorch and the MCP SDK were loaded by it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("qa", "qa.library", "qa.api.app", "mcp.server.mcpserver", "qa.mcp.server")
_TIMER = (
    "import json, sys, time\n"
    "started = time.perf_counter()\n"
    "import {module}\n"
    "took = time.perf_counter() - started\n"
    "print(json.dumps({{'seconds': took, 'torch': 'torch' in sys.modules, 'mcp': 'mcp' in sys.modules}}))\n"
)


def time_import(module: str) -> dict:
    """One fresh interpreter's import of ``module``: seconds, and whether torch and mcp came with it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _TIMER.format(module=module)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout)


def main() -> None:
    """Print the median import time of each entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"{'import':<21} {'median s':>9}  loads torch  loads mcp   ({args.runs} runs each, fresh interpreters)")
    for module in MODULES:
        runs = [time_import(module) for _ in range(args.runs)]
        median = statistics.median(run["seconds"] for run in runs)
        print(f"{module:<21} {median:>9.3f}  {str(runs[0]['torch']):<11}  {runs[0]['mcp']}")


if __name__ == "__main__":
    main()
