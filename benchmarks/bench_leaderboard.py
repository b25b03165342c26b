"""How long do `dcsbench validate` and `dcsbench leaderboard build` take at paper scale?

Writes synthetic but schema-valid submissions (records built with the pydantic model, the same
generator as the tests) for M methods on the ``full``-tier budgets (4 tasks x 7 budgets x 3 seeds
= 84 records per method and track), then times validation of every folder and the full build
(rliable bootstrap with ``--reps`` replications, plots, HTML) and prints a table.

    python benchmarks/bench_leaderboard.py --methods 5 10 --reps 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--reps", type=int, default=2000)
    args = ap.parse_args()

    import submission_factory as sf
    from dcsbench import catalogue, scoring
    from leaderboard.build import build_site
    from dcsbench.submissions import discover, validate_submission

    tier = "full"
    sf.TIER = tier  # full-tier names and budgets
    rows = []
    for m in args.methods:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            os.environ[scoring.REFERENCES_ENV] = str(sf.write_references(tmp / "refs.json"))
            known = sf.make_known()
            t0 = time.perf_counter()
            for i in range(m):
                sf.write_submission(tmp / "subs", f"method-{i:02d}", 0.3 + 0.05 * i,
                                    budgets=catalogue.TIERS[tier].budgets)
            t_write = time.perf_counter() - t0
            n_records = sum(1 for _ in (tmp / "subs").rglob("*.json"))
            t0 = time.perf_counter()
            subs = [validate_submission(f, known=known) for f in discover(tmp / "subs")]
            t_validate = time.perf_counter() - t0
            assert all(s.ok for s in subs), [str(p) for s in subs for p in s.errors][:5]
            t0, c0 = time.perf_counter(), time.process_time()
            build_site(tmp / "subs", tmp / "site", reps=args.reps, known=known)
            t_build, c_build = time.perf_counter() - t0, time.process_time() - c0
            rows.append((m, n_records, t_write, t_validate, t_build, c_build))
    print(f"| methods | records | write s | validate s | build wall s | build CPU s (reps={args.reps}) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for m, n, w, v, b, c in rows:
        print(f"| {m} | {n} | {w:.1f} | {v:.2f} | {b:.1f} | {c:.1f} |")


if __name__ == "__main__":
    main()
