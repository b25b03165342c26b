"""Update-step throughput (samples/s) of every baseline's training stages.

    python benchmarks/bench_baselines.py --device cpu --preset tiny
    python benchmarks/bench_baselines.py --device cpu --preset paper --batch 16 --steps 2
    python benchmarks/bench_baselines.py --device cuda --preset paper --compile

Each method runs in its own subprocess (a per-method ``--timeout``; a crash or OOM in one method
does not stop the others) on synthetic in-memory views (random frames, enough trajectories for
``k`` up to 10). For each stage the real stage function runs ``--warmup`` + ``--steps`` updates;
throughput = batch size x updates / time over the timed updates (every update ends with a
host sync because the logger reads the loss). LAM stages also sample a labeled batch (probe /
supervision) that is not counted in the samples. Prints one row per stage as it finishes and a
table at the end; ``--json`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

METHOD_STAGES = {
    "bc": ["bc"],
    "idm": ["idm", "bc"],
    "lapo": ["lam", "bc", "decoder"],
    "laom": ["lam", "bc", "decoder"],
    "laom-sup": ["lam", "bc", "decoder"],
}


class _Clock:
    """Logger recording the wall time at each logged update (log_every=1)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}

    def log(self, metrics, step=None):
        tag = next(iter(metrics)).split("/")[0]
        self.times.setdefault(tag, []).append(time.perf_counter())


def run_method(method: str, preset: str, device: str, compile_: bool, batch: int | None,
               warmup: int, steps: int, data_on_device: str = "auto") -> list[dict]:
    """Time every stage of ``method``; returns one row per stage."""
    import numpy as np
    import torch

    import baselines
    from baselines.common import TransitionSampler, fit_actor, fit_decoder
    from dcsbench.agent import EnvSpec
    from dcsbench.data import make_views_from_arrays

    if device == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (200, 64, 64, 3), dtype=np.uint8) for _ in range(8)]
    actions = [rng.uniform(-1, 1, (200, 6)).astype(np.float32) for _ in range(8)]
    unlabeled, labeled = make_views_from_arrays(frames, actions, [0, 1, 2, 3])
    spec = EnvSpec("walker-run", "distractors", (64, 64, 9), (64, 64, 3), 3, 6)
    n = warmup + steps
    sections = baselines.load_config(method, preset)
    over = {"runtime.device": device, "runtime.compile": compile_, "runtime.log_every": 1,
            "runtime.data_on_device": data_on_device}
    for sec in ("lam", "bc", "idm", "decoder"):
        if sec in sections and batch:
            over[f"{sec}.batch_size"] = batch
    agent = baselines.make_agent(method, preset, **over)
    clock = _Clock()
    agent_rng, _ = agent._start(spec, 0, clock)
    rt = agent.runtime
    unl = TransitionSampler(unlabeled, rt)
    lab = TransitionSampler(labeled, rt, labeled=True)
    cfg = agent.cfg
    rows = []

    def epochs_for(bs: int) -> float:  # exactly n updates over the synthetic view
        return (n - 0.5) * bs / unl.n_transitions

    for stage in METHOD_STAGES[method]:
        t0 = time.perf_counter()
        if stage == "lam":
            cfg.lam.epochs, cfg.lam.warmup_epochs = epochs_for(cfg.lam.batch_size), 0.0
            bs = cfg.lam.batch_size
            if method == "lapo":
                agent.fit_lam(unl, lab, agent_rng, clock)
            else:
                agent.fit_lam(unl, lab, spec, 0, agent_rng, clock)
        elif stage == "idm":
            cfg.idm.updates, bs = n, cfg.idm.batch_size
            agent.fit_idm(lab, agent_rng, clock)
        elif stage == "bc":
            cfg.bc.updates, bs = n, cfg.bc.batch_size
            if method == "bc":
                fit_actor("bc", agent.nets["actor"], lab, ("obs", "action"), lambda b: b["action"],
                          cfg.bc, agent_rng, rt, clock)
            else:  # latent BC / BC on relabels: same actor update; targets from the frozen model
                latent = method != "idm"
                if latent:
                    lam = agent.nets["lam"].eval()
                    fn = lambda b: agent.lam_latents(lam, rt.to_input(b["obs"]), rt.to_input(b["next_obs"]))  # noqa: E731
                    keys = ("obs", "next_obs")
                else:
                    table = torch.zeros(unl.cum[-1], spec.action_dim, device=rt.device)
                    fn = lambda b: table[torch.from_numpy(unl.cum[b["index"][:, 0]] + b["index"][:, 1]).to(rt.device)]  # noqa: E731
                    keys = ("obs",)
                fit_actor("bc", agent.nets["actor"], unl, keys, fn, cfg.bc, agent_rng, rt, clock)
        elif stage == "decoder":
            cfg.decoder.updates, bs = n, cfg.decoder.batch_size
            fit_decoder(agent.nets["decoder"], agent.nets["actor"], lab, cfg.decoder, agent_rng, rt, clock)
        ts = clock.times.pop(stage)
        timed = ts[-1] - ts[warmup - 1] if warmup >= 1 else ts[-1] - t0
        k = len(ts) - warmup
        rows.append({"method": method, "stage": stage, "preset": preset, "device": device,
                     "compile": compile_, "data_on_device": unl.on_device, "batch": bs, "timed_updates": k,
                     "updates_per_s": k / timed, "samples_per_s": k * bs / timed,
                     "first_update_s": ts[0] - t0,
                     "params_M": round(agent.param_breakdown().get(
                         {"lam": "lam", "idm": "idm"}.get(stage, "actor" if stage == "bc" else stage), 0) / 1e6, 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    p.add_argument("--compile", action="store_true", help="torch.compile the trained networks")
    p.add_argument("--methods", default=",".join(METHOD_STAGES), help="comma-separated methods")
    p.add_argument("--batch", type=int, default=None,
                   help="override every stage's batch size (default: the preset's; 16 for paper on cpu)")
    p.add_argument("--warmup", type=int, default=None, help="untimed updates per stage (default 1, 5 with --compile)")
    p.add_argument("--steps", type=int, default=None, help="timed updates per stage (default: 20 cuda/tiny, 2 paper cpu)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per method")
    p.add_argument("--data-on-device", default="auto", choices=["auto", "true", "false"],
                   help="gather frames on the GPU (auto: when they fit) or on the host")
    p.add_argument("--json", default=None, help="write all rows to this JSON file")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    paper_cpu = args.preset == "paper" and args.device == "cpu"
    batch = args.batch if args.batch is not None else (16 if paper_cpu else None)
    warmup = args.warmup if args.warmup is not None else (5 if args.compile else 1)
    steps = args.steps if args.steps is not None else (2 if paper_cpu else 20)
    if args.worker:
        rows = run_method(args.worker, args.preset, args.device, args.compile, batch, warmup, steps,
                          args.data_on_device)
        print("ROWS " + json.dumps(rows), flush=True)
        return 0
    from baselines import BASELINES
    from dcsbench.catalogue import check_choice

    methods = [check_choice("method", m.strip(), BASELINES) for m in args.methods.split(",") if m.strip()]
    all_rows = []
    print(f"# bench_baselines: device={args.device} preset={args.preset} compile={args.compile} "
          f"batch={batch or 'preset'} warmup={warmup} steps={steps} data_on_device={args.data_on_device}", flush=True)
    for m in methods:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", m, "--device", args.device,
               "--preset", args.preset, "--warmup", str(warmup), "--steps", str(steps),
               "--data-on-device", args.data_on_device]
        if batch:
            cmd += ["--batch", str(batch)]
        if args.compile:
            cmd.append("--compile")
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"{m}: TIMEOUT after {args.timeout:.0f}s", flush=True)
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROWS ")]
        if proc.returncode != 0 or not lines:
            print(f"{m}: FAILED (rc={proc.returncode})\n{proc.stderr[-2000:]}", flush=True)
            continue
        rows = json.loads(lines[-1][5:])
        all_rows += rows
        for r in rows:
            print(f"{m:9s} {r['stage']:8s} batch {r['batch']:4d}  {r['samples_per_s']:10.1f} samples/s  "
                  f"({r['updates_per_s']:.3f} upd/s, {r['params_M']} M params)  [{time.time() - t0:.0f}s]", flush=True)
    print("\n| method | stage | batch | samples/s | updates/s | params (M) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in all_rows:
        print(f"| {r['method']} | {r['stage']} | {r['batch']} | {r['samples_per_s']:.1f} | "
              f"{r['updates_per_s']:.3f} | {r['params_M']} |")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(all_rows, f, indent=2)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
