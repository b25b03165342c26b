"""Latent-action quality of LAPO, LAOM and LAOM+supervision: linear-probe MSE on the eval split.

The paper's latent-action-quality metric, without the (CPU-bound) online evaluation: for every
(method, seed) this trains stage 1 only (the latent action model, exactly as ``agent.fit`` does),
then fits the harness's ridge probe latent -> true action (:func:`dcsbench.protocol.probe_metrics`)
on a labeled view and scores it on the ``eval`` split (novel distractors). The unsupervised
LAMs (LAPO, LAOM) never see labels, so one LAM per seed is probed with the labeled views of
every budget and with all train actions (``all``: the label-independent quality of the latents);
LAOM+supervision trains one LAM per budget (its labels are an input). Each job appends one JSON
line per probe to ``OUT/probe_study.jsonl``; ``--report`` turns the lines into
``docs/probe_study.md`` (mean +- std over seeds).

    python benchmarks/probe_study.py --preset small --device cuda --workers 12 --out runs/probe
    python benchmarks/probe_study.py --report runs/probe/probe_study.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tiny_study import init_worker, method_overrides  # the sibling script (benchmarks/ is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("lapo", "laom", "laom-sup")


def run_one(method: str, dataset: str, seed: int, lam_budget, probe_budgets: list, preset: str,
            device: str, sets: list[str], out: str) -> str:
    """Train one LAM and probe it; appends the rows to ``out/probe_study.jsonl``."""
    import baselines
    from baselines.common import TransitionSampler
    from dcsbench.protocol import _agent_data, _eval_split, probe_metrics

    over = method_overrides(method, preset, device, sets)
    agent = baselines.make_agent(method, preset, **baselines.parse_overrides(over))
    unl, lab, spec, info = _agent_data(dataset, lam_budget, None)
    rng, logger = agent._start(spec, seed, None)
    t0 = time.time()
    agent.fit_lam(TransitionSampler(unl, agent.runtime),
                  TransitionSampler(lab, agent.runtime, labeled=True), spec, seed, rng, logger)
    fit_s = time.time() - t0
    rows = []
    for pb in probe_budgets:
        _, lab_pb, _, _ = _agent_data(dataset, pb, None)
        m = probe_metrics(agent, lab_pb, _eval_split(dataset, pb, None))
        rows.append({"method": method, "seed": seed, "lam_budget": lam_budget, "probe_budget": pb,
                     "preset": preset, "sets": sets, "lam_fit_s": round(fit_s, 1),
                     "lam_updates_config": agent.config.get("lam", {}), **m})
    with open(Path(out) / "probe_study.jsonl", "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    return f"{method} seed {seed} LAM(budget {lam_budget}) fit {fit_s:.0f} s: " + ", ".join(
        f"{r['probe_budget']}: {r.get('probe_mse_eval', float('nan')):.4f}" for r in rows)


def report(jsonl: Path, docs: Path) -> str:
    """Mean +- std over seeds of probe MSE (eval) per method and probe budget -> markdown."""
    import numpy as np

    rows = [json.loads(x) for x in jsonl.read_text(encoding="utf-8").splitlines() if x.strip()]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["method"], str(r["probe_budget"])), []).append(r)
    budgets = sorted({k[1] for k in groups}, key=lambda b: (b == "all", int(b) if b != "all" else 0))
    var = np.mean([r["action_var_eval"] for r in rows if "action_var_eval" in r])
    lines = [f"| method | " + " | ".join(f"probe fitted on {b} labeled traj." if b != "all"
                                       else "probe fitted on all train actions" for b in budgets)
             + " | LAM fit s |", "|---|" + "---:|" * (len(budgets) + 1)]
    for m in METHODS:
        cells = []
        for b in budgets:
            v = [r["probe_mse_eval"] for r in groups.get((m, b), []) if "probe_mse_eval" in r]
            cells.append(f"{np.mean(v):.4f} ± {np.std(v):.4f} (n={len(v)})" if v else "-")
        fit = [r["lam_fit_s"] for r in rows if r["method"] == m]
        lines.append(f"| {m} | " + " | ".join(cells) + (f" | {np.mean(fit):.0f} |" if fit else " | - |"))
    first = rows[0]
    text = (f"# Latent-action probe study (tiny tier)\n\nProbe MSE on the `eval` split (novel "
            f"backgrounds) of a ridge probe latent action -> true action, mean ± std over seeds; lower "
            f"is better. Constant-predictor MSE (action variance on eval): {var:.4f}.\n"
            f"Preset `{first['preset']}`{' with ' + ' '.join(first['sets']) if first['sets'] else ''}; "
            f"command: `python benchmarks/probe_study.py`.\n\n" + "\n".join(lines) + "\n")
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "probe_study.md").write_text(text, encoding="utf-8")
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="LAM probe study (stage 1 + harness probe, no rollouts).")
    p.add_argument("--dataset", default="cheetah-run-distractors-tiny")
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--budgets", nargs="+", type=int, default=[2, 8])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--preset", default="small")
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", dest="sets", nargs="*", default=[])
    p.add_argument("--out", default="runs/probe_study")
    p.add_argument("--report", default=None, help="only write docs/probe_study.md from this jsonl")
    p.add_argument("--docs", default=str(ROOT / "docs"))
    args = p.parse_args(argv)
    if args.report:
        print(report(Path(args.report), Path(args.docs)))
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    jobs = []
    for s in args.seeds:
        for m in args.methods:
            if m == "laom-sup":
                jobs += [(m, s, b, [b]) for b in args.budgets]
            else:
                jobs.append((m, s, max(args.budgets), list(args.budgets) + ["all"]))
    import multiprocessing as mp

    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"),
                             initializer=init_worker, initargs=(args.threads,)) as ex:
        futs = {ex.submit(run_one, m, args.dataset, s, b, pbs, args.preset, args.device, args.sets,
                          args.out): (m, s, b) for m, s, b, pbs in jobs}
        for f in as_completed(futs):
            try:
                print("done", f.result(), flush=True)
            except Exception as err:  # noqa: BLE001
                print("FAILED", futs[f], type(err).__name__, err, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
