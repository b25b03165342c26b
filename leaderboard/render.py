"""Render ``leaderboard.json`` to a static HTML site (no templates engine, no CDN, no inline JS).

Safety rules, all applied here:

* every string that reaches the page goes through :func:`esc` (``html.escape`` with quotes), in
  text and in attribute values alike; numbers are formatted by this module;
* links are emitted only for ``http``/``https`` URLs (:func:`safe_url`), with
  ``rel="noopener noreferrer nofollow"``; anything else is shown as plain escaped text;
* no inline event handlers or inline scripts/styles at all: behaviour lives in ``sort.js`` and
  looks only at ``data-sort`` attributes; the page carries a strict Content-Security-Policy
  (``default-src 'none'``, scripts/styles/images from the site itself only).
"""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

from dcsbench.fileio import atomic_write_text
from dcsbench.submissions import check_url

STATIC = Path(__file__).parent / "static"

#: Content-Security-Policy of every page.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def esc(value: Any) -> str:
    """HTML-escape any value (quotes included), for text and attribute positions."""
    return html.escape("" if value is None else str(value), quote=True)


def safe_url(url: Any) -> str | None:
    """``url`` if it is a plain http(s) URL, else None (never emit javascript:, data:, ...)."""
    if not isinstance(url, str):
        return None
    try:
        return check_url(url)
    except ValueError:
        return None


def link(url: Any, text: str) -> str:
    """An escaped ``<a>`` for a safe URL, or the escaped text of an unsafe one."""
    u = safe_url(url)
    if u is None:
        return f'<span class="muted">{esc(url)}</span>' if url else '<span class="muted">-</span>'
    return f'<a href="{esc(u)}" rel="noopener noreferrer nofollow">{esc(text)}</a>'


def fmt(x: float | None, digits: int = 2) -> str:
    """A number for display ('-' when missing)."""
    return "-" if x is None else f"{x:.{digits}f}"


def _sortkey(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def _td(text: str, sort: Any = None, cls: str = "") -> str:
    attrs = f' data-sort="{esc(sort)}"' if sort is not None else ""
    attrs += f' class="{esc(cls)}"' if cls else ""
    return f"<td{attrs}>{text}</td>"


def _th(label: str, kind: str = "num", title: str = "") -> str:
    t = f' title="{esc(title)}"' if title else ""
    return f'<th data-type="{esc(kind)}"{t} tabindex="0">{esc(label)}</th>'


def _ci(cell: dict[str, Any], key: str) -> str:
    v, lo, hi = cell.get(key), cell.get(f"{key}_lo"), cell.get(f"{key}_hi")
    if v is None:
        return '<span class="muted">-</span>'
    ci = f'<span class="ci">[{fmt(lo)}, {fmt(hi)}]</span>' if lo is not None and hi is not None else ""
    return f"<b>{fmt(v)}</b> {ci}"


def _method_cell(row: dict[str, Any], methods: dict[str, Any]) -> str:
    info = methods.get(row["method"], {})
    badges = ""
    if row.get("reference"):
        badges += ' <span class="badge ref" title="reference baseline shipped with dcsbench">reference</span>'
    if not row.get("ranked", True):
        cc = row.get("common_cells", {})
        badges += (f' <span class="badge inc" title="holds {esc(cc.get("present", 0))} of the '
                   f'{esc(cc.get("expected", 0))} (task, budget, seed) cells the track is ranked on; '
                   'shown below the ranked rows">unranked</span>')
    if not row["coverage"]["complete"]:
        badges += ' <span class="badge inc" title="some (task, budget, seed) cells are missing">incomplete</span>'
    if not row.get("protocol_compliant", True):
        eps = ", ".join(str(int(n)) for n in row.get("episodes_per_run", []))
        badges += (f' <span class="badge inc" title="runs not protocol-sized ({esc(eps)} evaluation '
                   'episodes per run, or a non-protocol dataset build)">non-protocol</span>')
    return (f'<a href="#method-{esc(row["method"])}">{esc(info.get("title", row["method"]))}</a>'
            f"{badges}")


def summary_table(track: dict[str, Any], methods: dict[str, Any]) -> str:
    """The sortable main table of one track."""
    budgets = track["budgets"]
    head = [_th("#", "num"), _th("Method", "text"),
            _th("Label-efficiency", "num", "IQM normalized score averaged over log2(budget)"),
            _th("Generalization", "num", "label-efficiency score on novel backgrounds")]
    head += [_th(f"IQM @ {b}", "num", f"IQM normalized score with {b} labeled trajectories, 95% CI")
             for b in budgets]
    head += [_th("Coverage", "num", "present / expected (task, budget, seed) cells")]
    body = []
    for row in track["rows"]:
        cov = row["coverage"]
        rank = row.get("rank")
        cells = [_td("-" if rank is None else esc(rank), "" if rank is None else rank),
                 _td(_method_cell(row, methods), row["method"]),
                 _td(f"<b>{fmt(row['label_efficiency'])}</b>", _sortkey(row["label_efficiency"])),
                 _td(fmt(row["generalization"]), _sortkey(row["generalization"]))]
        for b in budgets:
            c = row["budgets"].get(str(b), {})
            cells.append(_td(_ci(c, "iqm"), _sortkey(c.get("iqm"))))
        frac = cov["present"] / cov["expected"] if cov["expected"] else 0.0
        cells.append(_td(f"{cov['present']}/{cov['expected']}", f"{frac:.4f}",
                         "" if cov["complete"] else "warn"))
        ranked = row.get("ranked", True) and cov["complete"]
        body.append(f'<tr class="{"" if ranked else "incomplete"}">' + "".join(cells) + "</tr>")
    return _table(head, body, f"Main results, {track['track']}")


def _probe_text(cell: dict[str, Any]) -> str:
    if cell.get("probe_mse_novel") is None:
        return '<span class="muted">-</span>'
    rel = cell.get("probe_rel_novel")
    return fmt(cell["probe_mse_novel"], 3) + (f' <span class="ci">({fmt(rel)})</span>' if rel is not None else "")


def budget_table(track: dict[str, Any], methods: dict[str, Any]) -> str:
    """Sortable long table: one row per method x budget with mean, IQM, generalization, P(>BC)."""
    head = [_th("Method", "text"), _th("Budget", "num"), _th("Mean", "num", "mean normalized score, 95% CI"),
            _th("IQM", "num", "interquartile mean, 95% CI"), _th("Optimality gap", "num"),
            _th("Gen. IQM", "num", "IQM on novel backgrounds"),
            _th("P(> BC)", "num", "probability of improvement over BC"),
            _th("Probe MSE (novel)", "num", "linear probe latent action -> true action on the eval split "
                "(novel backgrounds); in brackets relative to predicting the mean action"),
            _th("Runs", "num", "seeds x tasks used")]
    body = []
    for row in track["rows"]:
        for b in track["budgets"]:
            c = row["budgets"].get(str(b))
            if not c:
                continue
            runs = f"{c.get('n_runs', 0)} x {c.get('n_tasks', 0)}"
            body.append("<tr>" + "".join([
                _td(_method_cell(row, methods), row["method"]), _td(str(b), b),
                _td(_ci(c, "mean"), _sortkey(c.get("mean"))), _td(_ci(c, "iqm"), _sortkey(c.get("iqm"))),
                _td(fmt(c.get("optimality_gap")), _sortkey(c.get("optimality_gap"))),
                _td(_ci(c, "gen_iqm"), _sortkey(c.get("gen_iqm"))),
                _td(_ci(c, "poi"), _sortkey(c.get("poi"))),
                _td(_probe_text(c), _sortkey(c.get("probe_mse_novel"))),
                _td(esc(runs), c.get("n_runs", 0) * c.get("n_tasks", 0))]) + "</tr>")
    return _table(head, body, f"Per budget, {track['track']}")


def task_table(track: dict[str, Any], methods: dict[str, Any]) -> str:
    """Sortable per-task breakdown: mean +- std over seeds of the normalized score."""
    head = [_th("Method", "text"), _th("Task", "text")]
    head += [_th(f"B={b}", "num", "mean +- std over seeds (novel backgrounds in grey)") for b in track["budgets"]]
    body = []
    for row in track["rows"]:
        for task in track["tasks"]:
            per = row["per_task"].get(task)
            if not per:
                continue
            cells = [_td(_method_cell(row, methods), row["method"]), _td(esc(task), task)]
            for b in track["budgets"]:
                p = per.get(str(b))
                if not p or p["mean"] is None:
                    cells.append(_td('<span class="muted">-</span>', ""))
                    continue
                gen = f' <span class="ci">{fmt(p["gen_mean"])}</span>' if p.get("gen_mean") is not None else ""
                cells.append(_td(f"{fmt(p['mean'])}<span class='ci'> &plusmn;{fmt(p['std'])} "
                                 f"(n={int(p['n_seeds'])})</span>{gen}", _sortkey(p["mean"])))
            body.append("<tr>" + "".join(cells) + "</tr>")
    return _table(head, body, f"Per task, {track['track']}")


def _table(head: list[str], body: list[str], caption: str) -> str:
    return (f'<div class="scroll"><table class="sortable"><caption>{esc(caption)}</caption>'
            f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")


def method_cards(methods: dict[str, Any]) -> str:
    """One card per method: authors, links, description, labels used, compute."""
    cards = []
    for name, m in sorted(methods.items(), key=lambda kv: (not kv[1]["reference"], kv[0])):
        ref = ' <span class="badge ref">reference</span>' if m["reference"] else ""
        cards.append(
            f'<article class="card" id="method-{esc(name)}"><h3>{esc(m["title"])}{ref}</h3>'
            f'<p class="muted">{esc(name)} v{esc(m["version"])} &middot; {esc(", ".join(m["authors"]))}</p>'
            f"<p>{esc(m['description'])}</p>"
            f"<dl><dt>Labels used</dt><dd>{esc(m['labels_used'])}</dd>"
            f"<dt>Compute</dt><dd>{esc(m['compute'])}</dd>"
            f"<dt>Links</dt><dd>{link(m.get('paper_url'), 'paper')} &middot; {link(m.get('code_url'), 'code')}</dd>"
            f"<dt>Records</dt><dd>{int(m['n_records'])}</dd></dl></article>")
    return '<div class="cards">' + "".join(cards) + "</div>"


def rejected_section(rejected: Iterable[dict[str, Any]]) -> str:
    """List of submissions that failed validation (escaped error lines)."""
    items = []
    for r in rejected:
        errs = "".join(f"<li><code>{esc(e)}</code></li>" for e in r["errors"])
        items.append(f"<details><summary>{esc(r['name'])}: {int(r['n_errors'])} error(s)</summary>"
                     f"<ul>{errs}</ul></details>")
    if not items:
        return ""
    return ('<section><h2>Rejected submissions</h2><p class="muted">These folders failed '
            "<code>dcsbench validate</code> and are not ranked.</p>" + "".join(items) + "</section>")


def _preview_banner(board: dict[str, Any]) -> str:
    if not board.get("preview"):
        return ""
    return ('<p class="banner"><b>Preview.</b> This board includes runs that are not '
            "protocol-compliant (fewer evaluation episodes or non-protocol dataset builds, marked "
            "<i>non-protocol</i>); its numbers are not comparable with the official leaderboard.</p>")


def _ranking_note(track: dict[str, Any]) -> str:
    """One line on the common cells the track is ranked on (empty for boards without it)."""
    rk = track.get("ranking")
    if not rk:
        return ""
    if track.get("smoke"):
        return ('<p class="smoke"><b>Smoke tier, unranked.</b> No dataset of this track has a '
                "valid normalization reference (BC on every train trajectory reaching at least "
                "50% of the demonstrators' mean return), so its numbers are <i>fractions of the "
                "demonstrators' return</i>, not normalized scores, and no row is ranked. It "
                "checks that a method runs end to end; it does not compare methods.</p>")
    basis = ("the cells the reference rows hold" if rk["basis"] == "reference rows"
             else "the full task x budget x seed grid (no reference row)")
    return (f'<p class="muted">Ranked on {esc(rk["n_cells"])} (task, budget, seed) cells: {esc(basis)} '
            f'(tasks {esc(", ".join(rk["tasks"]))}; budgets {esc(", ".join(map(str, rk["budgets"])))}). '
            "Label-efficiency and generalization are computed over exactly these cells; rows "
            "missing any of them are shown below, <i>unranked</i>.</p>")


def render_index(board: dict[str, Any]) -> str:
    """The full ``index.html`` of the site."""
    methods = board["methods"]
    sections = []
    nav = []
    for tr in board["tracks"]:
        anchor = "track-" + tr["track"].replace("/", "-")
        nav.append(f'<a href="#{esc(anchor)}">{esc(tr["track"])}</a>')
        figs = ""
        if tr.get("plots"):
            figs = ('<div class="figs">'
                    f'<figure><img src="{esc(tr["plots"]["bars"])}" alt="IQM normalized score per method and budget">'
                    "<figcaption>IQM normalized score per label budget (95% stratified-bootstrap CI).</figcaption></figure>"
                    f'<figure class="wide"><img src="{esc(tr["plots"]["tasks"])}" alt="normalized score vs budget per task">'
                    "<figcaption>Per task: normalized score vs labeled trajectories (mean &plusmn; std over seeds).</figcaption></figure>"
                    "</div>")
        sections.append(
            f'<section id="{esc(anchor)}"><h2>{esc(tr["setting"])} &middot; {esc(tr["tier"])} tier '
            + (" (smoke tier, unranked) " if tr.get("smoke") else " ")
            + f'&middot; {esc(tr["source"])} backgrounds</h2>'
            f'<p class="muted">Tasks: {esc(", ".join(tr["tasks"]))}. Budgets: '
            f'{esc(", ".join(map(str, tr["budgets"])))} labeled trajectories. Click a column to sort.</p>'
            + _ranking_note(tr)
            + summary_table(tr, methods) + figs
            + "<details><summary>Per budget (mean, IQM, optimality gap, generalization, P(&gt; BC), probe MSE)</summary>"
            + budget_table(tr, methods) + "</details>"
            + "<details><summary>Per task</summary>" + task_table(tr, methods) + "</details></section>")
    if not sections:
        sections.append('<section><p>No valid submission yet.</p></section>')
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dcsbench leaderboard</title>
<link rel="stylesheet" href="style.css">
<script src="sort.js" defer></script>
</head>
<body>
<header><h1>dcsbench leaderboard</h1>
<p>Latent action learning from video with visual distractors (Distracting Control Suite).
Scores are normalized by BC trained on all labels; aggregates follow rliable (IQM, 95% stratified-bootstrap CIs).
<b>Label-efficiency</b> = IQM averaged over log2(budget); <b>Generalization</b> = the same on novel backgrounds.</p>
<nav>{" ".join(nav)} <a href="#methods">methods</a> <a href="leaderboard.json">leaderboard.json</a> <a href="leaderboard.csv">leaderboard.csv</a></nav>
</header>
<main>
{_preview_banner(board)}
{"".join(sections)}
<section id="methods"><h2>Methods</h2>{method_cards(methods)}</section>
{rejected_section(board.get("rejected", []))}
</main>
<footer><p>To appear here: add <code>submissions/&lt;method&gt;/</code> (metadata.yaml + result records from
<code>dcsbench run</code>), check it with <code>dcsbench validate</code>, open a pull request
(format: <code>submissions/README.md</code>).</p>
protocol v{esc(board["protocol_version"])} &middot; dcsbench {esc(board["dcsbench_version"])}
&middot; generated {esc(board["generated"])} &middot; {esc(board["bootstrap_reps"])} bootstrap replications</footer>
</body>
</html>
"""


def write_site(board: dict[str, Any], out: str | os.PathLike) -> Path:
    """Write ``index.html`` and the static assets (``style.css``, ``sort.js``) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("style.css", "sort.js"):
        shutil.copyfile(STATIC / name, out / name)
    atomic_write_text(out / "index.html", render_index(board))
    return out / "index.html"
