"""Two versions of rnnlab, one session: `python -m benchmarks.layers` of each, alternated config by config.

    git worktree add /tmp/old <commit>
    python -m benchmarks.ab --old /tmp/old --new . --out benchmarks/results/ab [--configs gru,lstm ...]

For each config (in order, then again in reverse order for the second round, so neither version always runs
first) it runs the old tree's benchmark and the new tree's, each in its own process with that tree's `src`
first on sys.path, and writes both JSON files. Then a table: per config, shape, mode and backend, each
version's ratio to torch.nn (timed in the same process as that version, so the machine's speed cancels) and
new/old. A ratio of ratios above 1.10 is flagged. Numbers are medians over the rounds; this 2-core machine is
noisy (see BENCHMARKS.md): a flag says "look again", not "slower".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CONFIGS = "rnn,gru,gru-ln,lstm,lstm-peephole,lstm-coupled,lstm-ln,lstm-proj,lstm-all"


def run(tree: Path, config: str, out: Path, args: argparse.Namespace) -> None:
    env = {**os.environ, "PYTHONPATH": str((tree / "src").resolve())}
    cmd = [sys.executable, "-m", "benchmarks.layers", "--configs", config, "--backends", args.backends,
           "--shapes", args.shapes, "--rounds", str(args.rounds), "--out", str(out.resolve())]
    if args.emulate:  # both trees' benchmarks must know the option (benchmarks/layers.py --emulate)
        cmd += ["--emulate", args.emulate]
    subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, default=Path("."))
    ap.add_argument("--configs", default=CONFIGS)
    ap.add_argument("--shapes", default="S1,S2,S3,S4")
    ap.add_argument("--backends", default="auto,fused")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--emulate", default=None, help="passed to benchmarks.layers (avx2, portable)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each version per config (alternated)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/ab"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    configs = args.configs.split(",")
    for r in range(args.repeats):
        for config in (configs if r % 2 == 0 else configs[::-1]):
            order = [("old", args.old), ("new", args.new)]
            for name, tree in (order if r % 2 == 0 else order[::-1]):
                run(tree, config, args.out / f"{name}-{config}-{r}", args)
                print(f"round {r}: {config} {name} done", flush=True)
    ratios: dict[tuple, dict[str, list[float]]] = {}
    for name in ("old", "new"):
        for path in args.out.glob(f"{name}-*.json"):
            for row in json.loads(path.read_text())["rows"]:
                if row["status"] == "ok":
                    key = (row["config"], row["shape"], row["mode"], row["backend"])
                    ratios.setdefault(key, {"old": [], "new": []})[name].append(row["ratio"])
    print(f"{'config':<14} {'shape':<5} {'mode':<6} {'backend':<8} {'old xnn':>8} {'new xnn':>8} {'new/old':>8}")
    table = []
    for key in sorted(ratios):
        old, new = (statistics.median(ratios[key][n]) for n in ("old", "new"))
        table.append({"config": key[0], "shape": key[1], "mode": key[2], "backend": key[3], "old": old, "new": new,
                      "new_over_old": new / old})
        flag = "  <-- look again" if new / old > 1.10 else ""
        print(f"{key[0]:<14} {key[1]:<5} {key[2]:<6} {key[3]:<8} {old:8.2f} {new:8.2f} {new / old:8.2f}{flag}")
    (args.out / "summary.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
