"""Leaderboard: aggregation cross-checked by hand, site files, escaping proven in headless
Chromium, the self-written sorter, and publishing to the local hub server."""

from __future__ import annotations

import html
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import submission_factory as sf
from dcsbench import catalogue, scoring
from leaderboard import browser, render
from leaderboard.build import CSV_COLUMNS, build_site

REPS = 50  # bootstrap replications in tests (CIs are not the point here)

needs_chromium = pytest.mark.skipif(browser.find_chromium() is None, reason="no chromium installed")

#: Each payload tries to change document.title and mark the body when it runs.
PAYLOADS = (
    "<script>document.title='PWNED1';document.body.setAttribute('data-pwned','1')</script>",
    "<img src=x onerror=\"document.title='PWNED2'\">",
    "\"><svg onload=document.title='PWNED3'>",
    "'><iframe src=javascript:document.title='PWNED4'>",
    "</dd></style></script><script>document.title='PWNED5'</script>",
    "javascript:document.title='PWNED6'",
)
EVIL_FOLDER = "<img src=x onerror=document.title='PWNED7'>"


def hostile_metadata(method: str) -> dict:
    """Every free-text field of the metadata carries script payloads (still a valid submission)."""
    return sf.metadata(
        method, display_name=PAYLOADS[1][:80], version=PAYLOADS[2][:64], authors=list(PAYLOADS),
        description=" ".join(PAYLOADS), labels_used=PAYLOADS[0] + PAYLOADS[3],
        compute=PAYLOADS[4] + PAYLOADS[5], contact=PAYLOADS[2],
        paper_url="https://example.org/paper?a=1&b=%22x%22", code_url="http://example.org/code#frag")


@pytest.fixture(scope="module")
def board_site(tmp_path_factory):
    """A site built from: two complete methods, one incomplete, one hostile (valid), one tampered
    (rejected) and one folder whose name is a payload (rejected)."""
    root = tmp_path_factory.mktemp("lb")
    subs = root / "subs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(scoring.REFERENCES_ENV, str(sf.write_references(root / "references.json")))
        sf.write_submission(subs, "bc", 0.4, meta=sf.metadata("bc", reference=True, display_name="BC"))
        sf.write_submission(subs, "laom", 0.8, meta=sf.metadata("laom", reference=True))
        sf.write_submission(subs, "partial", 0.9, tasks=("cheetah-run", "walker-run"), seeds=(0, 1))
        sf.write_submission(subs, "evil", 0.6, tasks=("hopper-hop",), meta=hostile_metadata("evil"))
        tampered = sf.write_submission(subs, "tampered", 2.0, tasks=("cheetah-run",))
        rec = sorted((tampered / "results").glob("*.json"))[0]
        sf.edit_record(rec, lambda d: d["primary"].update(returns=[50 * r for r in d["primary"]["returns"]],
                                                          mean_return=50 * d["primary"]["mean_return"]))
        (subs / EVIL_FOLDER).mkdir()
        board = build_site(subs, root / "site", reps=REPS, known=sf.make_known())
        frame = scoring.records_to_frame(
            [p for p in (subs / m / "results" for m in ("bc", "laom")) if p.is_dir()])
    return board, root / "site", frame


def track(board):
    assert [t["track"] for t in board["tracks"]] == ["distractors/tiny/procedural"]
    return board["tracks"][0]


def row(board, method):
    return next(r for r in track(board)["rows"] if r["method"] == method)


# ------------------------------------------------------------------------ aggregation


def test_aggregates_match_hand_computation(board_site):
    board, _, frame = board_site
    for method in ("bc", "laom"):
        r = row(board, method)
        iqms = []
        for b in (2, 4, 8):
            sel = frame[(frame["method"] == method) & (frame["budget"] == b)]
            scores = np.sort(sel["primary_score"].to_numpy())
            assert len(scores) == 12  # 4 tasks x 3 seeds
            cell = r["budgets"][str(b)]
            assert cell["mean"] == pytest.approx(scores.mean(), rel=1e-9)
            assert cell["iqm"] == pytest.approx(scores[3:9].mean(), rel=1e-9)  # middle 50% of 12
            assert cell["iqm_lo"] <= cell["iqm"] <= cell["iqm_hi"]
            assert cell["n_runs"] == 3 and cell["n_tasks"] == 4
            gen = sel["generalization_score"].to_numpy()
            assert cell["gen_mean"] == pytest.approx(gen.mean(), rel=1e-9)
            iqms.append(cell["iqm"])
        # mean over log2(budget) of the IQM curve: budgets 2, 4, 8 are equally spaced in log2
        assert r["label_efficiency"] == pytest.approx((iqms[0] + 2 * iqms[1] + iqms[2]) / 4, rel=1e-9)
        probe = sel["offline_probe_mse_novel"].to_numpy()
        assert r["budgets"]["8"]["probe_mse_novel"] == pytest.approx(probe.mean(), rel=1e-9)
        assert r["budgets"]["8"]["probe_rel_novel"] == pytest.approx(probe.mean() / 0.5, rel=1e-9)
        task = r["per_task"]["walker-run"]["4"]
        sel = frame[(frame["method"] == method) & (frame["budget"] == 4) & (frame["task"] == "walker-run")]
        assert task["mean"] == pytest.approx(sel["primary_score"].mean()) and task["n_seeds"] == 3
    assert row(board, "laom")["budgets"]["8"]["poi"] > 0.9  # laom beats bc everywhere
    assert "poi" not in row(board, "bc")["budgets"]["8"]


def test_ranking_coverage_and_rejections(board_site):
    board, _, _ = board_site
    rows = track(board)["rows"]
    complete = [r["method"] for r in rows if r["coverage"]["complete"]]
    assert complete == ["laom", "bc"]  # best label-efficiency first
    # the references (bc, laom) hold the full grid: that is the common ranking set
    assert track(board)["ranking"] == {"basis": "reference rows", "n_cells": 36, "budgets": [2, 4, 8],
                                       "tasks": list(catalogue.TASKS)}
    assert [r["method"] for r in rows if r["ranked"]] == ["laom", "bc"]
    assert [r["rank"] for r in rows] == [1, 2, None, None]
    part = row(board, "partial")
    assert part["coverage"] == {"present": 12, "expected": 36, "complete": False,
                                "missing": part["coverage"]["missing"]}
    assert ["hopper-hop", 2, 0] in part["coverage"]["missing"]
    assert part["common_cells"]["present"] == 12 and part["label_efficiency"] is None
    # unranked rows come after ranked ones, by how many common cells they hold (12 vs 9)
    assert [r["method"] for r in rows[2:]] == ["partial", "evil"]
    rejected = {r["name"]: r for r in board["rejected"]}
    assert set(rejected) == {"tampered", EVIL_FOLDER}
    assert "returns[" in rejected["tampered"]["errors"][0] and "outside [0, 1000]" in rejected["tampered"]["errors"][0]
    assert "tampered" not in board["methods"]


def test_site_files(board_site):
    board, site, _ = board_site
    for name in ("index.html", "leaderboard.json", "leaderboard.csv", "style.css", "sort.js"):
        assert (site / name).is_file()
    assert json.loads((site / "leaderboard.json").read_text()) == board
    lines = (site / "leaderboard.csv").read_text().splitlines()
    assert lines[0].split(",") == list(CSV_COLUMNS) and len(lines) == 1 + 4 * 3
    for key in ("bars", "tasks"):
        png = site / track(board)["plots"][key]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    page = (site / "index.html").read_text()
    # partial and evil: main table 2 rows, per-budget 3 + 3, per-task 2 + 1
    assert page.count('">unranked</span>') == 11
    assert "Ranked on 36 (task, budget, seed) cells: the cells the reference rows hold" in page
    csp = [a["content"] for t, a in tags_of(page) if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == [render.CSP] and "default-src 'none'" in render.CSP


# ------------------------------------------------------------------------- escaping


class _Tags(HTMLParser):
    """Collects every start tag and its attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(text: str) -> list[tuple[str, dict]]:
    p = _Tags()
    p.feed(text)
    return p.tags


def assert_inert(text: str) -> None:
    """No tag or attribute in ``text`` comes from a payload."""
    for tag, attrs in tags_of(text):
        assert not any(a.startswith("on") for a in attrs), (tag, attrs)
        assert tag not in ("iframe", "svg", "object", "embed", "base", "form"), tag
        if tag == "script":
            assert attrs == {"src": "sort.js", "defer": None} or attrs == {"src": "sort.js", "defer": ""}
        if tag == "img":
            assert attrs["src"].startswith("plots/"), attrs
        if tag == "a":
            assert attrs["href"].startswith(("#", "https://", "http://", "leaderboard.")), attrs
        assert "data-pwned" not in attrs


def test_html_escapes_every_payload(board_site):
    _, site, _ = board_site
    page = (site / "index.html").read_text()
    assert_inert(page)
    for p in PAYLOADS:
        assert html.escape(p[:60], quote=True) in page
    assert html.escape(EVIL_FOLDER, quote=True) in page
    assert 'href="https://example.org/paper?a=1&amp;b=%22x%22"' in page


def test_render_never_links_unsafe_urls():
    assert render.safe_url("javascript:alert(1)") is None
    assert render.safe_url("JaVaScRiPt:alert(1)") is None
    assert render.safe_url("data:text/html,hi") is None
    assert render.safe_url("https://a.org/x\" onclick=\"y") is None
    out = render.link("javascript:document.title='X'", "paper")
    assert "<a" not in out and "javascript:document.title=&#x27;X&#x27;" in out
    assert render.link("https://a.org/?q=1&r=<2>", "code") == '<span class="muted">https://a.org/?q=1&amp;r=&lt;2&gt;</span>'


@needs_chromium
def test_chromium_runs_no_payload(board_site, tmp_path):
    """Headless Chromium loads the page: our sorter runs (CSP allows the site's own script), no
    payload does: title unchanged, no marker, payload text visible as text. Screenshot saved."""
    _, site, _ = board_site
    with browser.serve(site) as base:
        dom = browser.dump_dom(base + "index.html")
        png = browser.screenshot(base + "index.html", tmp_path / "hostile.png", 1280, 1600)
    assert "<title>dcsbench leaderboard</title>" in dom
    assert "PWNED" not in dom.split("<body")[0]          # title and head untouched
    assert "data-pwned" not in dom.replace("setAttribute(&#x27;data-pwned", "").replace(
        "setAttribute('data-pwned", "")
    assert 'data-sort-ready="1"' in dom                  # the site's own script did run
    assert_inert(dom)
    assert "&lt;script&gt;document.title='PWNED1'" in dom  # shown as text, escaped
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


@needs_chromium
def test_sorter_in_chromium(tmp_path):
    """The self-written sorter: numeric columns sort best-first, then reverse; blanks stay last."""
    shutil.copyfile(render.STATIC / "sort.js", tmp_path / "sort.js")
    (tmp_path / "t.html").write_text("""<!doctype html><html><head><title>t</title>
<script src="sort.js"></script></head><body>
<table class="sortable" id="t"><thead><tr><th data-type="text">m</th><th data-type="num">s</th></tr></thead>
<tbody><tr><td>a</td><td data-sort="0.5">x</td></tr><tr><td>b</td><td data-sort="">-</td></tr>
<tr><td>c</td><td data-sort="10">y</td></tr><tr><td>d</td><td data-sort="2">z</td></tr></tbody></table>
<script>
function order() { return Array.prototype.map.call(document.querySelectorAll('#t tbody tr'),
  function (r) { return r.cells[0].textContent; }).join(''); }
document.addEventListener('DOMContentLoaded', function () {  // after sort.js's own listener
  var th = document.querySelectorAll('#t th');
  th[1].click(); var first = order(); th[1].click(); var second = order(); th[0].click(); var third = order();
  document.body.setAttribute('data-result', first + '|' + second + '|' + third);
});
</script></body></html>""")
    dom = browser.dump_dom((tmp_path / "t.html").as_uri())
    assert 'data-result="cdab|adcb|abcd"' in dom


# -------------------------------------------------------------------------- publish


def test_publish_to_local_hub(board_site, hub_server):
    from huggingface_hub import hf_hub_download

    from leaderboard.publish import publish

    _, site, _ = board_site
    publish(site, "dcsbench/leaderboard", repo_type="dataset")
    repo = hub_server.state.repo("dataset", "dcsbench/leaderboard")
    files = repo.commits[-1][1]
    for name in ("index.html", "leaderboard.json", "leaderboard.csv", "sort.js", "style.css", "README.md"):
        assert name in files
    assert sum(1 for f in files if f.startswith("plots/") and f.endswith(".png")) == 2
    got = hf_hub_download("dcsbench/leaderboard", "leaderboard.json", repo_type="dataset")
    assert Path(got).read_bytes() == (site / "leaderboard.json").read_bytes()
    # a static Space: README header makes the hub serve index.html
    publish(site, "dcsbench/leaderboard-space", repo_type="space")
    space = hub_server.state.repo("space", "dcsbench/leaderboard-space").commits[-1][1]
    assert b"sdk: static" in space["README.md"] and "index.html" in space
    # publishing again is a new commit on the same repo
    publish(site, "dcsbench/leaderboard", repo_type="dataset", commit_message="again")
    assert len(hub_server.state.repo("dataset", "dcsbench/leaderboard").commits) == 2


def test_publish_refuses_unbuilt_site(tmp_path):
    from leaderboard.publish import publish

    with pytest.raises(FileNotFoundError, match="not a built leaderboard site"):
        publish(tmp_path, "org/repo")
    with pytest.raises(ValueError, match="ORG/REPO"):
        publish(tmp_path, "no-slash")
    with pytest.raises(ValueError, match="Valid repo types"):
        publish(tmp_path, "org/repo", repo_type="model")


# ----------------------------------------------------------------------- preview, import


def test_preview_board_accepts_short_runs_marked(tmp_path, monkeypatch):
    """Runs with fewer evaluation episodes are rejected by default and shown, marked, in preview."""
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(sf.write_references(tmp_path / "r.json")))
    folder = sf.write_submission(tmp_path / "subs", "short", 0.5, tasks=("cheetah-run",), budgets=(2,))

    def shorten(d):
        for part in ("primary", "generalization"):
            rets = d[part]["returns"][:5]
            d[part].update(returns=rets, episode_seeds=d[part]["episode_seeds"][:5],
                           mean_return=sum(rets) / 5)
        d["protocol_compliant"] = False
    for p in (folder / "results").glob("*.json"):
        sf.edit_record(p, shorten)
    strict = build_site(tmp_path / "subs", tmp_path / "strict", reps=REPS, known=sf.make_known(), plots=False)
    assert strict["tracks"] == [] and strict["rejected"][0]["name"] == "short"
    assert not strict["preview"]
    board = build_site(tmp_path / "subs", tmp_path / "preview", reps=REPS, known=sf.make_known(),
                       plots=False, allow_noncompliant=True)
    r = board["tracks"][0]["rows"][0]
    assert board["preview"] and r["protocol_compliant"] is False and r["episodes_per_run"] == [5]
    page = (tmp_path / "preview" / "index.html").read_text()
    assert "Preview." in page and "non-protocol</span>" in page


def test_tiny_without_a_valid_reference_is_an_unranked_smoke_tier(tmp_path, monkeypatch):
    """References below 50% of the demonstrators (as the real tiny tier's): the track is a smoke
    tier, every row unranked, numbers are fractions of the demonstrators' return."""
    path = tmp_path / "r.json"
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(path))
    for task, ret in sf.REF_RETURN.items():  # each reference at 10% of its demonstrators
        scoring.store_reference({"dataset": sf.dataset_name(task), "task": task,
                                 "setting": sf.SETTING, "tier": sf.TIER, "source": sf.SOURCE,
                                 "return": ret, "demonstrator_mean_return": 10 * ret}, path)
    subs = tmp_path / "subs"
    sf.write_submission(subs, "bc", 0.4, meta=sf.metadata("bc", reference=True, display_name="BC"))
    sf.write_submission(subs, "laom", 0.8, meta=sf.metadata("laom", reference=True))
    board = build_site(subs, tmp_path / "site", reps=REPS, known=sf.make_known(), plots=False)
    assert not board["rejected"]
    (tr,) = board["tracks"]
    assert tr["smoke"] is True and tr["score"] == "demonstrator_fraction"
    assert tr["ranking"]["basis"] == "smoke tier: unranked"
    assert all(r["rank"] is None and not r["ranked"] and r["label_efficiency"] is None
               for r in tr["rows"])
    laom = next(r for r in tr["rows"] if r["method"] == "laom")
    top = laom["budgets"][str(max(tr["budgets"]))]["mean"]
    assert top == pytest.approx(0.08, abs=0.02)   # score 0.8 of a 10% reference = 8% of demos
    page = (tmp_path / "site" / "index.html").read_text()
    assert "smoke tier, unranked" in page and "Smoke tier, unranked." in page
    csv_rows = (tmp_path / "site" / "leaderboard.csv").read_text().splitlines()[1:]
    assert csv_rows and all(row.split(",")[1] == "" for row in csv_rows)  # no rank anywhere


def test_import_runs_creates_reference_submission(tmp_path, monkeypatch):
    from dcsbench.results import save_record
    from dcsbench.submissions import validate_submission
    from leaderboard.importer import import_runs, reference_metadata

    monkeypatch.setenv(scoring.REFERENCES_ENV, str(sf.write_references(tmp_path / "r.json")))
    assert set(reference_metadata()) == {"bc", "idm", "lapo", "laom", "laom-sup"}
    runs = tmp_path / "runs"
    for s in (0, 1):
        save_record(sf.make_record("laom-sup", "walker-run", 4, s, 0.5), runs / f"x{s}.json")
        save_record(sf.make_record("mine", "walker-run", 4, s, 0.5), runs / f"y{s}.json")
    summary = import_runs([runs], tmp_path / "subs")
    assert len(summary.written) == 4 and summary.metadata_missing == [tmp_path / "subs" / "mine" / "metadata.yaml"]
    sub = validate_submission(tmp_path / "subs" / "laom-sup", known=sf.make_known())
    assert sub.ok and sub.metadata.reference and len(sub.records) == 2
    again = import_runs([runs], tmp_path / "subs")
    assert len(again.unchanged) == 4 and not again.written
    save_record(sf.make_record("laom-sup", "walker-run", 4, 0, 0.9), runs / "x0.json")
    assert len(import_runs([runs], tmp_path / "subs").conflicts) == 1


def preview_version(subs: Path) -> int:
    """record_version of the first record under ``subs`` (1 when absent)."""
    first = sorted(subs.glob("*/results/*.json"))[0]
    return json.loads(first.read_text()).get("record_version", 1)


def test_end_to_end_real_run_to_board(tiny_dataset_home, tmp_path, monkeypatch):
    """A real `dcsbench.protocol.evaluate` record (tiny non-protocol build, short episodes)
    -> import-runs -> validate: strict rejects it only for protocol size; preview board shows it."""
    from dcsbench import protocol
    from dcsbench.data.known import load_known_datasets
    from dcsbench.submissions import validate_submission
    from leaderboard.importer import import_runs
    from trivial_agents import MeanAction

    refs = tmp_path / "refs.json"
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(refs))
    name = "cheetah-run-distractors-tiny"
    scoring.store_reference({"dataset": name, "task": "cheetah-run", "setting": "distractors",
                             "tier": "tiny", "source": "procedural", "return": 50.0}, refs)
    for seed in (0, 1):
        protocol.evaluate(MeanAction(), name, 2, seed, tmp_path / "runs", n_episodes=2,
                          episode_length=20, num_envs=2, progress=False, verbose=False)
    subs = tmp_path / "subs"
    summary = import_runs([tmp_path / "runs"], subs)
    assert len(summary.written) == 2
    sf_meta = sf.metadata("mean-action")
    (subs / "mean-action" / "metadata.yaml").write_text(json.dumps(sf_meta))
    known = load_known_datasets(include_local=True, committed=tmp_path / "none.json")
    strict = validate_submission(subs / "mean-action", known=known)
    # a version-2 record states its 20-step episodes (version 1 did not store the length)
    shorter = {"episode_length"} if preview_version(subs) >= 2 else set()
    assert {p.field for p in strict.errors} == {"protocol_compliant", "primary.episode_seeds",
                                                "generalization.episode_seeds", "dataset"} | shorter
    preview = validate_submission(subs / "mean-action", known=known, allow_noncompliant=True)
    assert preview.ok and len(preview.records) == 2
    board = build_site(subs, tmp_path / "site", reps=REPS, known=known, plots=False,
                       allow_noncompliant=True)
    r = board["tracks"][0]["rows"][0]
    assert r["method"] == "mean-action" and r["coverage"]["present"] == 2
    rec = preview.records[0][1]
    assert r["per_task"]["cheetah-run"]["2"]["n_seeds"] == 2
    assert r["budgets"]["2"]["mean"] == pytest.approx(
        np.mean([x.primary.mean_return for _, x in preview.records]) / 50.0)
    frame = scoring.records_to_frame([rec])
    assert frame.loc[0, "primary_score"] == pytest.approx(rec.primary.mean_return / 50.0)


def test_plots_name_the_smoke_tier_score_as_the_page_does():
    """A smoke track (no valid reference) plots fractions of the demonstrators' return, and its
    axis says so; a normalized track says normalized score."""
    from leaderboard import plots

    assert plots._score_name({"score": "demonstrator_fraction"}) == "fraction of demonstrators' return"
    assert plots._score_name({"score": "normalized"}) == "normalized score"
