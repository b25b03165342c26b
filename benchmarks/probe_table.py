"""Stage-1-only probe table: how linearly the LAM methods' latent actions predict true actions.

For each dataset (default: ``cheetah-run-distractors-tiny`` and ``cheetah-run-clean-tiny``) and
each latent-action method (LAPO, LAOM, LAOM+sup) this trains stage 1 only (the latent action
model, exactly as ``agent.fit`` starts: same seeding, same samplers), then runs the harness's
probe (:func:`dcsbench.probe.probe_report`): a ridge probe latent -> true action with
trajectory-grouped CV, fitted on the train trajectories that :func:`dcsbench.probe.split_trajectories`
keeps and scored on the held-out ones (``probe_mse_train``), against the constant predictor
(``action_var_train``) and the same probe on the untrained model ``fit`` starts from
(``probe_mse_train_random``, via ``init_untrained``). Prints a markdown table and writes it,
with the machine named, into ``benchmarks/RESULTS-baselines.md`` (between markers).

    nice -n 5 python benchmarks/probe_table.py --preset tiny --epochs 3 --device cpu

Datasets are built if absent (``dcsbench build NAME --workers 1``).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

METHODS = ("lapo", "laom", "laom-sup")
DATASETS = ("cheetah-run-distractors-tiny", "cheetah-run-clean-tiny")
BEGIN, END = "<!-- probe_table:begin -->", "<!-- probe_table:end -->"


def machine() -> str:
    """A one-line description of this machine (CPU model, cores, torch)."""
    import torch
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def ensure(dataset: str) -> None:
    """Build ``dataset`` locally if it cannot be opened."""
    from dcsbench import data
    try:
        data.prepare(dataset, 2, download=False)
    except Exception:  # noqa: BLE001 - not cached (or stale): build it
        subprocess.run([str(ROOT / ".venv/bin/dcsbench"), "build", dataset, "--workers", "1"], check=True)


def run_one(method: str, dataset: str, preset: str, epochs: float, budget: int, seed: int,
            device: str) -> dict:
    """Train one LAM (stage 1) and return its probe report plus timing."""
    import baselines
    from baselines.common import TransitionSampler
    from dcsbench import data
    from dcsbench.probe import probe_report

    over = {"lam.epochs": epochs, "runtime.device": device}
    pdata = data.prepare(dataset, budget, download=False)
    agent = baselines.make_agent(method, preset, **over)
    rng, logger = agent._start(pdata.spec, seed, None)
    t0 = time.time()
    agent.fit_lam(TransitionSampler(pdata.unlabeled, agent.runtime),
                  TransitionSampler(pdata.labeled, agent.runtime, labeled=True), pdata.spec, seed, rng, logger)
    fit_s = time.time() - t0
    untrained = baselines.make_agent(method, preset, **over)
    assert untrained.init_untrained(pdata.spec, seed)
    rep = probe_report(agent.latent_actions, pdata.train_labeled, None, untrained.latent_actions)
    return {"method": method, "dataset": dataset, "fit_s": fit_s, **rep}


def table(rows: list[dict], args) -> str:
    """The markdown table of ``rows``."""
    out = [f"Stage 1 only, preset `{args.preset}`, {args.epochs:g} epochs over the unlabeled view, "
           f"budget {args.budget} (LAOM+sup's labels), seed {args.seed}; probe = `dcsbench.probe.probe_report` "
           f"(ridge, trajectory-grouped CV, fitted on 12 train trajectories, scored on 4 held-out ones). "
           f"Machine: {machine()}.", "",
           "| dataset | method | probe_mse_train | random features | constant | trained / random | fit (s) |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r['dataset']} | {r['method']} | {r['probe_mse_train']:.4f} | "
                   f"{r['probe_mse_train_random']:.4f} | {r['action_var_train']:.4f} | "
                   f"{r['probe_mse_train'] / r['probe_mse_train_random']:.2f} | {r['fit_s']:.0f} |")
    return "\n".join(out)


def write_results(text: str, path: Path) -> None:
    """Replace the probe-table section of ``path`` (between markers), or append one."""
    block = f"{BEGIN}\n## Stage-1 probe table (`benchmarks/probe_table.py`)\n\n{text}\n{END}"
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.write_text(new)


def main(argv=None) -> int:
    """Command line: ``--preset --epochs --budget --seed --device --methods --datasets --threads --no-write``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--budget", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: no spin-waiting on a shared machine)")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    rows = []
    for ds in args.datasets:
        ensure(ds)
        for m in args.methods:
            rows.append(run_one(m, ds, args.preset, args.epochs, args.budget, args.seed, args.device))
            r = rows[-1]
            print(f"{ds} {m}: probe {r['probe_mse_train']:.4f} random {r['probe_mse_train_random']:.4f} "
                  f"constant {r['action_var_train']:.4f} (fit {r['fit_s']:.0f} s)", flush=True)
    text = table(rows, args)
    print("\n" + text)
    if not args.no_write:
        write_results(text, ROOT / "benchmarks" / "RESULTS-baselines.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
