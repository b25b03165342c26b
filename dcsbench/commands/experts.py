"""CLI: ``train-expert``, ``expert-eval`` and ``collect`` (expert policies and data collection)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add the experts/collection subcommands to the ``dcsbench`` parser."""
    from dcsbench import catalogue

    p = sub.add_parser(
        "train-expert", help="train a state-based PPO, SAC or CrossQ expert (resumable)",
        description="Train a PPO or SAC expert on proprioceptive state. Re-running the same command on "
                    "the same --out folder resumes from its last checkpoint (checkpoints every "
                    "few minutes, at --max-minutes and on SIGTERM/SIGINT). When finished, the "
                    "policy is evaluated and exported to OUT/export/.")
    p.add_argument("task", help=f"one of {', '.join(catalogue.TASKS)}")
    p.add_argument("--total-steps", type=int, default=10_000_000,
                   help="environment steps (rounded up to whole rollouts of n_envs x 1000)")
    p.add_argument("--algo", default="ppo", choices=("ppo", "sac", "crossq", "sac-jax"),
                   help="ppo (fast on many cores), sac (sample-efficient, one env), or the JAX "
                        "learners crossq / sac-jax (sbx-rl, optional extra experts-jax; one env)")
    p.add_argument("--n-envs", type=int, default=None, help="parallel envs (default 8 for ppo, "
                   "1 for sac; must stay the same across resumes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (default runs/expert-TASK)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="checkpoint and stop before this wall time is exceeded")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads of the learner")
    p.add_argument("--vec-env", default="subproc", choices=("subproc", "dummy"),
                   help="envs in subprocesses or all in the learner process (speed only)")
    p.add_argument("--device", default="cpu", help="torch device of the learner: cpu, cuda, auto")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one hyper-parameter of the algorithm's config (repeatable; "
                        "values read as JSON), e.g. --set n_step=3; recorded in the card's command")
    p.add_argument("--eval-episodes", type=int, default=20, help="episodes of the final evaluation")
    p.add_argument("--install", action="store_true",
                   help="when finished, copy the exported expert into dcsbench/experts/")
    p.add_argument("--stop-at", type=int, default=None,
                   help="pause at this many steps and export (reproduces an intermediate expert)")
    p.add_argument("--fork-from", default=None, metavar="RUN",
                   help="start --out from the last checkpoint of run folder RUN with the config "
                        "given here (e.g. a changed --set); the parent is left as it is. A SAC "
                        "fork keeps the parent's replay buffer when it changes only "
                        "learning_rate, batch_size, tau, gamma, gradient_steps or train_freq; "
                        "otherwise it starts with an empty one (a recorded warm start). Pass "
                        "the same flag again to resume the fork")
    p.add_argument("--export-only", action="store_true",
                   help="export (and evaluate) the last checkpoint now, without training")
    p.add_argument("--refill-steps", type=int, default=None, metavar="N",
                   help="off-policy warm start (a packed run has no replay buffer): env steps the "
                        "policy refills the buffer for before updates resume (default: the "
                        "config's learning_starts; 50000+ measured necessary on humanoid-walk, "
                        "5000 collapsed the policy)")
    p.add_argument("--snapshot-every", type=int, default=50_000, metavar="N",
                   help="keep the policy (weights only, ~1 MB) every N steps under OUT/snapshots/ "
                        "for --select-best (0: none; changes nothing in training)")
    p.add_argument("--select-best", action="store_true",
                   help="without training: evaluate every snapshot and the last checkpoint on "
                        "--select-episodes selection seeds and export the best; the card's "
                        "evaluation then uses other seeds (cached in OUT/selection.json)")
    p.add_argument("--select-episodes", type=int, default=10,
                   help="episodes per candidate for --select-best")
    p.add_argument("--pack", default=None, metavar="DIR",
                   help="copy the run's last checkpoint without the SAC replay buffer into DIR "
                        "(a few MB) to continue on another machine: copy DIR there and pass it "
                        "as --out; a SAC run then resumes by a recorded warm start")
    p.set_defaults(func=_train)

    p = sub.add_parser("expert-eval", help="evaluate a committed expert and compare with its card")
    p.add_argument("task")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--path", default=None, help="evaluate this .safetensors file instead")
    p.set_defaults(func=_eval)

    p = sub.add_parser(
        "collect", help="roll an expert and stage per-episode npz files",
        description="Collect episodes with the expert acting on the proprioceptive state while "
                    "64x64 frames are rendered by dcsbench.make_env. Episode i uses seed "
                    "SEED_BASE+i; finished episodes are kept, so re-running resumes.")
    p.add_argument("task")
    p.add_argument("--setting", default="distractors", help=f"one of {', '.join(catalogue.SETTINGS)}")
    p.add_argument("--source", default="procedural", help=f"one of {', '.join(catalogue.SOURCES)}")
    p.add_argument("--pool", default="train", help=f"background pool: {', '.join(catalogue.POOLS)}")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--seed-base", type=int, default=None,
                   help="first episode seed (default: the registry's base for train/novel pools)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--episode-length", type=int, default=catalogue.EPISODE_LENGTH)
    p.add_argument("--policy", default="expert", choices=("expert", "random"))
    p.add_argument("--davis-dir", default=None)
    p.add_argument("-o", "--out", required=True, help="output folder (episodes/ is created in it)")
    p.set_defaults(func=_collect)


def _train(args: argparse.Namespace) -> int:
    from dcsbench.experts import train

    out = args.out or f"runs/expert-{args.task}"
    if args.pack:
        print(f"packed {out} -> {train.pack_run(out, args.pack)} (no replay buffer: a SAC run "
              f"resumes from it as a recorded warm start)")
        return 0
    if args.export_only or args.select_best:
        if args.select_best:
            train.select_run(out, episodes=args.select_episodes, eval_episodes=args.eval_episodes)
        else:
            train.export_run(out, eval_episodes=args.eval_episodes)
        status = {"finished": True}
    else:
        overrides = train.parse_overrides(args.algo, args.overrides)
        cfg = train.ALGOS[args.algo](torch_threads=args.torch_threads, **overrides)
        n_envs = args.n_envs or (1 if args.algo in train.OFF_POLICY else 8)
        status = train.train_expert(args.task, out, total_steps=args.total_steps,
                                    n_envs=n_envs, seed=args.seed,
                                    max_minutes=args.max_minutes,
                                    checkpoint_minutes=args.checkpoint_minutes, config=cfg,
                                    eval_episodes=args.eval_episodes, vec_env=args.vec_env,
                                    device=args.device, stop_at=args.stop_at,
                                    fork_from=args.fork_from,
                                    snapshot_every=args.snapshot_every,
                                    refill_steps=args.refill_steps)
    if (status["finished"] or status.get("export")) and args.install:
        for path in train.install_export(out):
            print(f"installed {path}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import math

    import numpy as np

    from dcsbench.experts import expert_card, load_expert
    from dcsbench.experts.stateenv import evaluate_state_policy
    from dcsbench.experts.runs import EXPERT_EVAL_SEEDS

    if not 1 <= args.episodes <= len(EXPERT_EVAL_SEEDS):
        raise ValueError(f"--episodes must be in 1..{len(EXPERT_EVAL_SEEDS)}")
    policy = load_expert(args.task, path=args.path)
    returns = evaluate_state_policy(policy, args.task, EXPERT_EVAL_SEEDS[:args.episodes])
    mean, std = float(np.mean(returns)), float(np.std(returns))
    print(f"{args.task}: mean return {mean:.1f} +- {std:.1f} over {len(returns)} episodes "
          f"(deterministic, seeds {EXPERT_EVAL_SEEDS[0]}..{EXPERT_EVAL_SEEDS[len(returns) - 1]})")
    if args.path is not None:
        return 0
    card = expert_card(args.task)["eval"]
    # Same seeds and a deterministic policy: only floating-point differences between machines
    # (which can grow over 1000 chaotic steps) separate the numbers. Tolerance: 3 standard errors.
    tol = 3 * max(card["std"], std, 1.0) / math.sqrt(min(len(returns), card["episodes"]))
    diff = mean - card["mean"]
    ok = abs(diff) <= tol
    print(f"card: {card['mean']:.1f} +- {card['std']:.1f} over {card['episodes']} episodes; "
          f"difference {diff:+.1f} (tolerance {tol:.1f}): {'OK' if ok else 'DIFFERS'}")
    return 0 if ok else 1


def _collect(args: argparse.Namespace) -> int:
    from dcsbench.data.collect import collect_episodes, default_seed_base

    base = args.seed_base if args.seed_base is not None else default_seed_base(args.pool)
    seeds = list(range(base, base + args.episodes))
    paths = collect_episodes(args.task, args.setting, args.source, args.pool, seeds, args.out,
                             workers=args.workers, davis_dir=args.davis_dir, policy=args.policy,
                             episode_length=args.episode_length, progress=True)
    import json
    from pathlib import Path

    summary = json.loads((Path(args.out) / "collect.json").read_text(encoding="utf-8"))
    rate = summary["last_run"]["frames_per_second"]
    print(f"{len(paths)} episodes in {args.out}/episodes; mean return {summary['mean_return']:.1f} "
          f"+- {summary['std_return']:.1f}" + (f"; {rate:.0f} frames/s" if rate else ""))
    return 0
