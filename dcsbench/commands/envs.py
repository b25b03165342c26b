"""``dcsbench show-env``: a PNG grid of frames so a person can look at the distractors."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``show-env`` subcommand."""
    p = subparsers.add_parser(
        "show-env", help="render a PNG grid of environment frames (time steps x pools)",
        description="Roll out a random policy in TASK and save a grid of 64x64 frames: one row "
                    "per episode (seed) and background pool, one column per time step.")
    p.add_argument("task", help="task name, e.g. cheetah-run")
    p.add_argument("--setting", default="distractors", help="clean or distractors")
    p.add_argument("--source", default="procedural", help="procedural or davis")
    p.add_argument("--davis-dir", default=None, help="DAVIS-2017 folder (source davis)")
    p.add_argument("--pools", default="train,novel", help="comma-separated pools (rows)")
    p.add_argument("--episodes", type=int, default=3, help="episodes (seeds 0..N-1) per pool")
    p.add_argument("--steps", default="0,10,20,40,80,160",
                   help="comma-separated time steps shown as columns")
    p.add_argument("--scale", type=int, default=2, help="pixel upscaling of the PNG")
    p.add_argument("-o", "--output", required=True, help="output PNG path")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render the grid and write it atomically."""
    from dcsbench.envs.grid import frame_grid, save_png

    pools = [s.strip() for s in args.pools.split(",") if s.strip()]
    steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    grid = frame_grid(args.task, args.setting, source=args.source, pools=pools,
                      seeds=list(range(args.episodes)), steps=steps, davis_dir=args.davis_dir)
    save_png(grid, args.output, scale=args.scale)
    print(f"wrote {args.output} ({len(pools) * args.episodes} rows x {len(steps)} steps: "
          f"{', '.join(map(str, steps))}; rows: {', '.join(pools)} pools)")
    return 0
