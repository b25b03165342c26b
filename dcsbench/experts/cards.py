"""Model cards for experts: render the card data (``{task}.json``) as Markdown."""

from __future__ import annotations


def render_card(card: dict) -> str:
    """Markdown model card for one expert from its card data."""
    ev = card["eval"]
    hp = card.get("hyperparameters", {})
    paper = card.get("paper_expert_return")
    ratio = f" ({ev['mean'] / paper:.0%} of the paper's expert, {paper})" if paper else ""
    hours = card.get("train_seconds")
    lines = [
        f"# Expert: {card['task']}",
        "",
        f"State-based policy used to collect the `{card['task']}` datasets. It acts on the flat "
        "proprioceptive state (`dcsbench.envs.state.flatten_state`), never on pixels.",
        "",
        "| field | value |",
        "|---|---|",
        f"| algorithm | {card['algorithm']} |",
        f"| environment steps | {card['steps']:,} |",
        f"| seed | {card['seed']} |",
        f"| parallel envs | {card.get('n_envs')} |",
        f"| training time | {hours / 3600:.2f} h of update loop |" if hours else "| training time | n/a |",
        f"| state / action dim | {card['state_dim']} / {card['action_dim']} |",
        f"| eval return (mean +- std, {ev['episodes']} episodes, deterministic) | "
        f"**{ev['mean']:.1f} +- {ev['std']:.1f}**{ratio} |",
        f"| date | {card['date']} |",
        f"| weights sha256 | `{card['sha256']}` |",
        "",
        "## Reproduce",
        "",
        *([f"Forked from run `{card['forked_from']['run']}` at {card['forked_from']['at_steps']:,} "
           "steps with changed hyper-parameters ("
           + ", ".join(f"`{k}` {a} -> {b}" for k, (a, b) in card["forked_from"]["changes"].items())
           + ("), keeping the parent's replay buffer" if card["forked_from"].get("replay_kept")
              else "), starting from an empty replay buffer")
           + ": train the parent to that step first.",
           ""] if card.get("forked_from") else []),
        "```bash",
        *([f"{card['forked_from']['command']} --stop-at {card['forked_from']['at_steps']} "
           f"--out {card['forked_from']['run']}"] if card.get("forked_from") else []),
        card["command"] + " --out runs/expert-" + card["task"] + " --install",
        f"dcsbench expert-eval {card['task']} --episodes {ev['episodes']}",
        "```",
        "",
        "Training is resumable: re-run the same command (e.g. with `--max-minutes`) to continue. "
        "Bit-identical weights need the same `--n-envs`; other machines may differ in the last "
        "bits of floating point and hence in the trajectory of training.",
        "",
        "## Policy",
        "",
        (f"Observation normalised with the training running mean/variance (clip {hp['clip_obs']}), "
         if "clip_obs" in hp else "Raw state input (no normalisation), ")
        + f"MLP {hp.get('net_arch')} with {hp.get('activation')}, output = mean of the Gaussian "
        + ("policy squashed by tanh" if card.get("output") == "tanh" else "policy clipped to [-1, 1]")
        + " (deterministic). Stored as plain tensors in safetensors; "
        "`dcsbench.experts.load_expert` needs only numpy.",
        *([
            "",
            f"Trained with a training-only standing term (`stand_bonus` {hp['stand_bonus']}, see "
            "`dcsbench.experts.stateenv`) added to the task reward; the returns on this card and "
            "in the datasets are the task's own reward.",
        ] if hp.get("stand_bonus") else []),
        *([
            "",
            f"Trained with a soft standing test (`soft_stand_margin` {hp['soft_stand_margin']}, "
            "see `dcsbench.experts.stateenv`) in the training reward only; the returns on this "
            "card and in the datasets are the task's own reward.",
        ] if hp.get("soft_stand_margin") else []),
        *([
            "",
            f"Chosen by `--select-best` among {len(card['selection']['candidates'])} policies of "
            f"the run (snapshots and last checkpoint, {card['selection']['candidates'][0][0]:,} to "
            f"{card['selection']['candidates'][-1][0]:,} steps): the best mean return, "
            f"{card['selection']['chosen_mean']:.1f}, over {card['selection']['episodes']} episodes "
            f"on selection seeds {card['selection']['seeds'][0]}..{card['selection']['seeds'][1]}. "
            "The evaluation above uses other seeds, so the choice does not inflate it. "
            "Re-running the command above stops at the chosen step.",
        ] if card.get("selection") else []),
        *([
            "",
            "Warm-started (not an exact resume): "
            + "; ".join(f"at {w['at_steps']:,} steps the checkpoint had no replay buffer and the "
                        f"policy refilled it for {w['refill_steps']:,} steps before updates resumed"
                        for w in card["warm_starts"])
            + ". The command above trains without interruption, so it reproduces a statistically "
            "similar expert, not these exact weights.",
        ] if card.get("warm_starts") else []),
        "",
        "## Hyper-parameters",
        "",
        "| name | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in sorted(hp.items())],
        "",
        "## Evaluation episodes",
        "",
        f"Seeds {ev['seeds'][0]}..{ev['seeds'][-1]} on the state environment "
        f"(`{ev['env']}`); returns: {', '.join(f'{r:.1f}' for r in ev['returns'])}.",
        "",
    ]
    return "\n".join(lines)
