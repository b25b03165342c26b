"""``dcsbench study PLAN.yaml``: run the missing runs of a committed plan within a time limit."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``study`` subcommand to the ``dcsbench`` parser."""
    p = sub.add_parser(
        "study", help="run what is missing of a study plan (datasets x methods x budgets x "
                      "seeds + references) within --max-minutes; pack / resume",
        description="Run the missing runs of PLAN.yaml (the datasets' references first) on the "
                    "sweep executors, stop cleanly before --max-minutes (runs in flight resume "
                    "from their checkpoint next time), print done / remaining, and optionally "
                    "pack the study folder into a few files (--pack) to resume elsewhere "
                    "(--resume-from).")
    p.add_argument("plan", help="plan file (YAML), e.g. studies/plans/first-shard.yaml")
    p.add_argument("--out", default=None, help="study folder (default: the plan's out, else "
                                               "runs/study-NAME)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="wall-clock limit of this call, packing included (default: none)")
    p.add_argument("--pack", metavar="DIR", default=None,
                   help="afterwards, pack records + checkpoints into <= 8 files of <= 16 MiB")
    p.add_argument("--pack-max-files", type=int, default=8,
                   help="files --pack may write (default 8: what a lent machine returns)")
    p.add_argument("--resume-from", metavar="PATH", action="append", default=[],
                   help="restore packed files (a folder or a file) first (repeatable)")
    p.add_argument("--status", action="store_true", help="print done / remaining and exit")
    p.add_argument("--list-datasets", action="store_true",
                   help="print the plan's datasets, one a line, and exit")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="override the plan's executor")
    p.add_argument("--workers", type=int, default=None, help="concurrent runs (local)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run")
    p.add_argument("--num-gpus", type=float, default=None, help="GPUs per run (ray; fractions pack)")
    p.add_argument("--num-cpus", type=float, default=None, help="CPUs per run (ray)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (ray)")
    p.add_argument("--root", default=None, help="dataset cache root (default: $DCSBENCH_HOME)")
    p.add_argument("--json", action="store_true", help="print the final status as JSON")
    p.set_defaults(func=cmd_study)


def cmd_study(args: argparse.Namespace) -> int:
    """``dcsbench study``: 0 when nothing failed (runs left by the deadline are no failure)."""
    from dcsbench import study

    plan = study.load_plan(args.plan)
    if args.list_datasets:
        print("\n".join(plan.datasets))
        return 0
    out = study.study_dir(plan, args.out)
    if args.status:
        for src in args.resume_from:
            study.unpack(src, out)
        st = study.study_status(plan, out)
        print(json.dumps(st, indent=2) if args.json else study.format_status(st))
        return 0
    res = study.run_study(plan, out, max_minutes=args.max_minutes, executor=args.executor,
                          workers=args.workers, threads=args.threads, num_gpus=args.num_gpus,
                          num_cpus=args.num_cpus, ray_address=args.ray_address, root=args.root,
                          pack_to=args.pack, resume_from=args.resume_from,
                          pack_max_files=args.pack_max_files)
    st = res.status
    print(json.dumps(st, indent=2) if args.json else study.format_status(st))
    print(f"study {plan.name}: {st['done']}/{st['n_runs']} done, "
          f"{st['n_runs'] - st['done']} remaining, {len(res.failed)} failed this call; "
          f"{res.seconds:.0f} s; folder {res.out}")
    for rec, err in res.failed.items():
        print(f"failed: {rec}: {err}", file=sys.stderr)
    if res.packed:
        sizes = ", ".join(f"{p.name} ({p.stat().st_size / 2**20:.2f} MiB)" for p in res.packed)
        print(f"packed {len(res.packed)} file(s) in {args.pack}: {sizes}")
    return 1 if res.failed else 0
