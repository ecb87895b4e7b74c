"""Command-line paths a user waits on, next to floors run in turn with them (A B A B ...):

* ``runnerconf --help`` against ``python -c pass`` (the interpreter's own start);
* ``runnerconf validate`` of a 1-worker file and of a 10,000-worker file against
  ``check-jsonschema`` with the committed schema on the same file (what CI would run otherwise):
  as a user's runs go, with the validator kept from the first run (in a cache directory of this
  script's own), and for the 1-worker file also with nothing kept (``RUNNERCONF_CACHE_DIR=``:
  the models validate, as on the first run on a new machine).

    python benchmarks/bench_cli.py [--runs 7]

Medians of the runs and the ratio pair by pair (the machine's speed drifts; pairs do not).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import alternate, line  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schema" / "topology.schema.json"


def topology(workers: int) -> str:
    lines = ["version: 1", "runner: {name: bench}", "workers:"]
    lines += [f"  - {{name: w{i}, class: \"myapp.workers:Worker\", params: {{n: {i}}}}}" for i in range(workers)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    checker = shutil.which("check-jsonschema") or str(Path(py).parent / "check-jsonschema")
    print(f"{'path':<34} {'runnerconf':>11} {'floor':>11}")
    ta, tb, r = alternate([py, "-m", "runnerconf", "--help"], [py, "-c", "pass"], args.runs)
    print(line("--help / python -c pass", ta, tb, r, "<= 120 ms"))
    with tempfile.TemporaryDirectory() as tmp:
        kept = {**os.environ, "RUNNERCONF_CACHE_DIR": str(Path(tmp) / "cache")}
        nothing_kept = {**os.environ, "RUNNERCONF_CACHE_DIR": ""}
        for count, env, label, target in (
            (1, kept, "validate 1 worker / check-jsonschema", "<= 0.4x"),
            (1, nothing_kept, "  the same, nothing kept", "(first run)"),
            (10_000, kept, "validate 10,000 workers / check-jsonschema", "<= 0.3x"),
        ):
            path = Path(tmp) / f"w{count}.yaml"
            path.write_text(topology(count))
            ta, tb, r = alternate(
                [py, "-m", "runnerconf", "validate", str(path)], [checker, "--schemafile", str(SCHEMA), str(path)], args.runs, env_a=env
            )
            print(line(label, ta, tb, r, target))


if __name__ == "__main__":
    main()
