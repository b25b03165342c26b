"""The validator and the ranking against a hostile submitter (issue 19, item 3).

Each attack is written as the attacker would: on a *version-1* record as old code wrote it (no
``record_version``, no ``episode_length``) with the stored ``normalized_score`` removed (which
version 1 allowed), so that nothing but the attack itself can be what is refused. Every test
asserts the field named and the reason, so it fails on the code before the change (which
accepted, coerced or ranked these) and passes after.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import submission_factory as sf
from dcsbench import catalogue, scoring
from dcsbench.results import RECORD_VERSION, RecordError, parse_record
from dcsbench.submissions import reference_submissions, validate_submission
from leaderboard.build import aggregate_board, collect

REPS = 50
#: A number no record holds, replaced in the JSON text by the literal under test.
MARK = 12345.678987


def old_style(folder: Path) -> Path:
    """Drop the (optional in version 1) stored scores of every record; return the first one."""
    def drop(d):
        for part in ("primary", "generalization"):
            d[part].pop("normalized_score", None)
    paths = sorted((folder / "results").glob("*.json"))
    for p in paths:
        sf.edit_record(p, drop)
    return paths[0]


@pytest.fixture
def victim(tmp_path, refs):
    """A valid one-task, version-1 submission (as committed folders are) and its first record."""
    folder = sf.write_submission(tmp_path / "subs", "attacker", tasks=("cheetah-run",), version=1)
    return folder, old_style(folder)


def problems_at(s, path: Path, field: str, *words: str) -> list:
    """Errors of ``s`` at ``path``/``field`` whose message holds every word."""
    return [p for p in s.errors if path.name in p.path and p.field == field
            and all(w.lower() in p.message.lower() for w in words)]


def assert_refused(s, path: Path, field: str, *words: str) -> None:
    assert not s.ok and problems_at(s, path, field, *words), \
        f"no error at {path.name}:{field} with {words}; got:\n" + "\n".join(map(str, s.problems))


# ------------------------------------------------------------------------ impossible returns


def test_x50_returns_are_refused(victim, known):
    folder, rec = victim

    def x50(d):
        d["primary"]["returns"] = [50 * r for r in d["primary"]["returns"]]
        d["primary"]["mean_return"] *= 50
    sf.edit_record(rec, x50)
    assert json.loads(rec.read_text())["primary"]["mean_return"] > catalogue.EPISODE_LENGTH
    assert_refused(validate_submission(folder, known=known), rec, "primary", "outside [0, 1000]")


def test_negated_returns_are_refused(victim, known):
    folder, rec = victim

    def negate(d):
        d["generalization"]["returns"] = [-r for r in d["generalization"]["returns"]]
        d["generalization"]["mean_return"] *= -1
    sf.edit_record(rec, negate)
    assert_refused(validate_submission(folder, known=known), rec, "generalization", "outside [0, 1000]")


@pytest.mark.parametrize("where", ["primary.mean_return", "primary.normalized_score",
                                   "offline_metrics.probe_mse_eval", "stage_seconds.fit",
                                   "method.config.lr"])
def test_1e999_is_refused_as_not_finite(victim, known, where):
    """``1e999`` is valid JSON that parses as ``inf`` (NaN/Infinity literals were already refused)."""
    folder, rec = victim
    *parents, leaf = where.split(".")

    def plant(d):
        for k in parents:
            d = d[k]
        d[leaf] = MARK
    sf.edit_record(rec, plant)
    rec.write_text(rec.read_text().replace(str(MARK), "1e999"))
    s = validate_submission(folder, known=known)
    field = "method.config" if where.startswith("method.config") else where
    assert_refused(s, rec, field, "finite")


# ------------------------------------------------------------------------------ strict types


@pytest.mark.parametrize("field, value, words", [("budget", "2", ("valid integer",)),
                                                  ("seed", 0.0, ("valid integer",)),
                                                  ("protocol_compliant", "true", ("valid boolean",))])
def test_coercible_types_are_refused(victim, known, field, value, words):
    folder, rec = victim
    sf.edit_record(rec, lambda d: d.update({field: value}))
    assert_refused(validate_submission(folder, known=known), rec, field, *words)


# ------------------------------------------------------------------- reference and display


def test_copied_reference_flag_is_refused(tmp_path, refs, known):
    folder = sf.write_submission(tmp_path / "subs", "evil", tasks=("cheetah-run",), version=1,
                                 meta=sf.metadata("evil", reference=True))
    old_style(folder)
    s = validate_submission(folder, known=known)
    assert not s.ok and [p for p in s.errors if p.field == "reference"
                         and "only the reference baselines" in p.message and "'evil'" in p.message]


def test_reference_allow_list_is_the_shipped_baselines():
    """The allow-list, the importer's reference metadata and the committed reference folders
    agree (a new reference is a maintainer change to the allow-list)."""
    from leaderboard.importer import reference_metadata

    allowed = reference_submissions()
    assert allowed == {"bc", "idm", "lapo", "laom", "laom-sup"} == set(reference_metadata())
    repo = Path(__file__).resolve().parents[1] / "submissions"
    for meta in repo.glob("*/metadata.yaml"):
        if "reference: true" in meta.read_text():
            assert meta.parent.name in allowed


@pytest.mark.parametrize("field, value, words", [
    ("display_name", "bc\u202e\u0000evil", ("U+202E", "bidirectional")),
    ("display_name", "bc\u0000", ("U+0000", "control")),
    ("display_name", "B.C.", ("reference baseline 'bc'",)),
    ("authors", ["Ada", "Eve\u2066 Mallory"], ("authors[1]", "U+2066")),
    ("description", "fine\nparagraph\u200f", ("U+200F",)),
    ("version", "1\u061c", ("U+061C",)),
    ("compute", "1 GPU\x1b[31m", ("U+001B", "control")),
    ("code_url", "https://example.org/\u202ecod", ("U+202E",)),
])
def test_display_strings_without_control_or_bidi_characters(tmp_path, refs, known, field, value, words):
    folder = sf.write_submission(tmp_path / "subs", "evil", tasks=("cheetah-run",), version=1)
    old_style(folder)
    # JSON is YAML: the escapes \u202e, \u0000 reach the parsed string as those characters
    (folder / "metadata.yaml").write_text(json.dumps(sf.metadata("evil", **{field: value})))
    s = validate_submission(folder, known=known)
    assert not s.ok and [p for p in s.errors if "metadata.yaml" in p.path and p.field == field
                         and all(w.lower() in p.message.lower() for w in words)], \
        "\n".join(map(str, s.problems))


def test_newlines_stay_allowed_in_paragraphs(tmp_path, refs, known):
    folder = sf.write_submission(tmp_path / "subs", "fine", tasks=("cheetah-run",))
    (folder / "metadata.yaml").write_text(json.dumps(sf.metadata(
        "fine", description="Line one.\n\tLine two.", display_name="Fine (v2, \u00e9t\u00e9)")))
    s = validate_submission(folder, known=known)
    assert s.ok, "\n".join(map(str, s.errors))


# ---------------------------------------------------------------------------------- ranking


def _board(subs: Path, known):
    got = collect(subs, known=known)
    assert not got.rejected, [str(p) for s in got.rejected for p in s.errors]
    board = aggregate_board(got.valid, reps=REPS)
    (tr,) = board["tracks"]
    return tr


@pytest.mark.parametrize("cell", [("cheetah-run", 8, 0), ("walker-run", 8, 0)],
                         ids=["inside-reference-cells", "outside-reference-cells"])
def test_one_cherry_picked_cell_does_not_outrank_bc(tmp_path, refs, known, cell):
    """BC holds 6 of 36 cells (cheetah-run, budgets 2 and 8, three seeds: the committed board);
    a method holding one cell where it scores high is shown below BC, unranked."""
    subs = tmp_path / "subs"
    old_style(sf.write_submission(subs, "bc", 0.4, tasks=("cheetah-run",), budgets=(2, 8), version=1,
                                  meta=sf.metadata("bc", reference=True, display_name="BC")))
    task, budget, seed = cell
    old_style(sf.write_submission(subs, "cherry", 0.95, tasks=(task,), budgets=(budget,), seeds=(seed,),
                                  version=1))
    tr = _board(subs, known)
    assert [r["method"] for r in tr["rows"]] == ["bc", "cherry"]
    assert tr["ranking"]["basis"] == "reference rows" and tr["ranking"]["n_cells"] == 6
    bc, cherry = tr["rows"]
    assert (bc["method"], bc["rank"], bc["ranked"]) == ("bc", 1, True)
    assert (cherry["method"], cherry["rank"], cherry["ranked"]) == ("cherry", None, False)
    assert cherry["label_efficiency"] is None and bc["label_efficiency"] is not None
    # its one cell does score above BC's: the order is not an accident of the scores
    assert cherry["budgets"][str(budget)]["iqm"] > bc["budgets"]["8"]["iqm"]


def test_without_reference_rows_the_full_grid_is_the_ranking_set(tmp_path, refs, known):
    """No reference row in a track: ranked on the full grid; partial rows by cells held."""
    subs = tmp_path / "subs"
    sf.write_submission(subs, "broad", 0.3, tasks=("cheetah-run", "walker-run"))
    sf.write_submission(subs, "narrow", 0.95, tasks=("hopper-hop",), budgets=(8,), seeds=(0,))
    tr = _board(subs, known)
    assert tr["ranking"]["basis"] == "full grid" and tr["ranking"]["n_cells"] == 36
    assert [(r["method"], r["rank"], r["common_cells"]["present"]) for r in tr["rows"]] == [
        ("broad", None, 18), ("narrow", None, 1)]


def test_label_efficiency_over_common_cells(refs):
    """scoring.label_efficiency(cells=...): each group on exactly the common cells; one lacking
    any gets NaN (not a higher average over fewer budgets)."""
    recs = [sf.make_record(m, "cheetah-run", b, s, q) for m, q, bs in
            (("bc", 0.4, (2, 8)), ("cherry", 0.95, (8,))) for b in bs for s in catalogue.OFFICIAL_SEEDS]
    frame = scoring.records_to_frame(recs)
    common = scoring.cells_of(frame[frame["method"] == "bc"])
    _, loose = scoring.label_efficiency(frame, reps=REPS)
    loose = loose.set_index("method")
    assert loose.loc["cherry", "log_mean"] > loose.loc["bc", "log_mean"]  # the attack, unguarded
    _, fair = scoring.label_efficiency(frame, reps=REPS, cells=common)
    fair = fair.set_index("method")
    assert fair.loc["bc", "complete"] and not fair.loc["cherry", "complete"]
    assert fair.loc["bc", "log_mean"] == pytest.approx(loose.loc["bc", "log_mean"])
    assert fair.loc["cherry", "log_mean"] != fair.loc["cherry", "log_mean"]  # NaN
    assert (fair.loc["cherry", "n_cells"], fair.loc["cherry", "n_common"]) == (3, 6)


# --------------------------------------------------------------------------- record versions


def test_v1_record_still_loads(victim, known):
    """Old records (no record_version / episode_length, a stored normalized_score, v1 offline
    names) load as version 1 with 1000-step episodes; the score comes from the returns."""
    folder, rec = victim
    sf.edit_record(rec, lambda d: d["primary"].update(normalized_score=0.123))
    data = json.loads(rec.read_text())
    assert "record_version" not in data and "episode_length" not in data
    r = parse_record(data)
    assert (r.record_version, r.episode_length) == (1, 1000) and r.primary.normalized_score == 0.123
    s = validate_submission(folder, known=known)
    assert s.ok, "\n".join(map(str, s.errors))
    frame = scoring.records_to_frame([r])
    assert frame.loc[0, "primary_score"] == pytest.approx(r.primary.mean_return / sf.REF_RETURN["cheetah-run"])
    assert frame.loc[0, "offline_probe_mse_novel"] == data["offline_metrics"]["probe_mse_eval"]


def test_v2_record_with_normalized_score_is_refused(tmp_path, refs, known):
    folder = sf.write_submission(tmp_path / "subs", "mine", tasks=("cheetah-run",))
    rec = sorted((folder / "results").glob("*.json"))[0]
    assert json.loads(rec.read_text())["record_version"] == RECORD_VERSION == 2
    assert validate_submission(folder, known=known).ok
    sf.edit_record(rec, lambda d: d["generalization"].update(normalized_score=0.5))
    assert_refused(validate_submission(folder, known=known), rec, "generalization",
                   "normalized_score must be absent")


@pytest.mark.parametrize("change, field, words", [
    (lambda d: d.pop("episode_length"), "episode_length", ("required in record version 2",)),
    (lambda d: d["offline_metrics"].update(probe_mse_eval=0.1), "offline_metrics", ("'probe_mse_eval'",
                                                                                   "probe_mse_novel")),
    (lambda d: d.update(record_version=3), "record_version", ("not one this dcsbench reads",)),
    (lambda d: d.update(record_version="2"), "record_version", ("valid integer",)),
])
def test_v2_schema_rules(tmp_path, refs, known, change, field, words):
    folder = sf.write_submission(tmp_path / "subs", "mine", tasks=("cheetah-run",))
    rec = sorted((folder / "results").glob("*.json"))[0]
    sf.edit_record(rec, change)
    assert_refused(validate_submission(folder, known=known), rec, field, *words)


def test_longer_episodes_cannot_widen_the_return_bound(tmp_path, refs, known):
    """A record may claim longer episodes to fit larger returns: the schema then accepts the
    returns, but the protocol's 1000 steps are enforced (an error even for preview boards)."""
    folder = sf.write_submission(tmp_path / "subs", "mine", tasks=("cheetah-run",))
    rec = sorted((folder / "results").glob("*.json"))[0]

    def longer(d):
        d["episode_length"] = 5000
        d["primary"]["returns"] = [r * 10 for r in d["primary"]["returns"]]
        d["primary"]["mean_return"] *= 10
    sf.edit_record(rec, longer)
    with pytest.raises(RecordError, match="outside"):
        parse_record({**json.loads(rec.read_text()), "episode_length": 1000})
    for preview in (False, True):
        s = validate_submission(folder, known=known, allow_noncompliant=preview)
        assert_refused(s, rec, "episode_length", "longer than the protocol's 1000")
