"""Submission validation: every rule of the format, hostile input, the CLI, and the real folders.

The last test validates every folder committed under ``submissions/`` against the committed
known-dataset hashes and references only: that is how CI checks submissions.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

import submission_factory as sf
from dcsbench import catalogue, scoring
from dcsbench.commands import board
from dcsbench.data.known import (KnownDatasets, add_known, build_from_manifest,
                                     load_known_datasets, read_committed)
from dcsbench.results import MAX_RECORD_BYTES
from dcsbench.submissions import discover, format_report, validate_submission

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def sub(tmp_path, refs):
    """A complete valid submission with one task (to keep it small) and its first record path."""
    folder = sf.write_submission(tmp_path / "subs", "mymethod", tasks=("cheetah-run",))
    return folder


def first_record(folder: Path) -> Path:
    return sorted((folder / "results").glob("*.json"))[0]


def errors(s) -> list[str]:
    return [str(p) for p in s.errors]


def assert_error(s, path_part: str, field: str, *words: str) -> None:
    """Exactly one kind of error expected: it names the file, the field and says why."""
    hits = [p for p in s.errors if path_part in p.path and p.field == field
            and all(w.lower() in p.message.lower() for w in words)]
    assert hits, f"no error at {path_part}:{field} with {words}; got:\n" + "\n".join(errors(s))


# ------------------------------------------------------------------------------------ valid


def test_valid_submission_passes_with_coverage(tmp_path, refs, known):
    folder = sf.write_submission(tmp_path / "subs", "good")
    s = validate_submission(folder, known=known)
    assert s.ok, errors(s)
    assert len(s.records) == len(catalogue.TASKS) * 3 * 3
    cov = s.coverage[("distractors", "tiny", "procedural")]
    assert cov.complete and cov.fraction == 1.0
    assert "OK" in format_report(s)


def test_incomplete_coverage_is_a_warning_with_table(tmp_path, refs, known):
    folder = sf.write_submission(tmp_path / "subs", "partial", tasks=("walker-run",), seeds=(0, 2))
    s = validate_submission(folder, known=known)
    assert s.ok
    cov = s.coverage[("distractors", "tiny", "procedural")]
    assert not cov.complete
    assert ("walker-run", 2, 1) in cov.missing and ("hopper-hop", 8, 0) in cov.missing
    assert any("incomplete" in p.message for p in s.warnings)
    table = cov.table()
    assert "walker-run       0.2" in table and "hopper-hop       ..." in table


# ------------------------------------------------------------------------ metadata problems


def test_missing_metadata_field(sub, known):
    text = (sub / "metadata.yaml").read_text().replace("authors:", "writers:")
    (sub / "metadata.yaml").write_text(text)
    s = validate_submission(sub, known=known)
    assert_error(s, "metadata.yaml", "authors", "required field is missing")


def test_metadata_method_must_match_folder(sub, known):
    text = (sub / "metadata.yaml").read_text().replace("method: mymethod", "method: other")
    (sub / "metadata.yaml").write_text(text)
    s = validate_submission(sub, known=known)
    assert_error(s, "metadata.yaml", "method", "folder name")
    assert_error(s, "results", "method.name", "differs from metadata")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>x</script>",
                                 "https://ok.org/\" onmouseover=\"x", "ftp://x.org/p"])
def test_metadata_urls_must_be_http(sub, known, url):
    (sub / "metadata.yaml").write_text(json.dumps(sf.metadata("mymethod", paper_url=url)))
    s = validate_submission(sub, known=known)
    assert_error(s, "metadata.yaml", "paper_url")


@pytest.mark.parametrize("payload, words", [
    ("!!python/object/apply:os.system ['touch /tmp/pwned']", ("tag",)),
    ("!!str tagged", ("tag",)),
    ("&a hello", ("anchor",)),
])
def test_yaml_tags_and_anchors_rejected(sub, known, payload, words, tmp_path):
    meta = (sub / "metadata.yaml").read_text().replace("compute: 2-core CPU, seconds",
                                                       f"compute: {payload}")
    (sub / "metadata.yaml").write_text(meta)
    s = validate_submission(sub, known=known)
    assert_error(s, "metadata.yaml", "", *words)
    assert not Path("/tmp/pwned").exists()


def test_yaml_invalid_and_duplicate_keys(sub, known):
    (sub / "metadata.yaml").write_text("method: [unclosed\n")
    assert_error(validate_submission(sub, known=known), "metadata.yaml", "", "invalid YAML")
    (sub / "metadata.yaml").write_text("method: mymethod\nmethod: again\n")
    assert_error(validate_submission(sub, known=known), "metadata.yaml", "method", "duplicate key")
    (sub / "metadata.yaml").write_text("- just\n- a list\n")
    assert_error(validate_submission(sub, known=known), "metadata.yaml", "", "mapping")


def test_unknown_metadata_field(sub, known):
    (sub / "metadata.yaml").write_text(json.dumps(sf.metadata("mymethod", score=99)))
    assert_error(validate_submission(sub, known=known), "metadata.yaml", "score", "unknown field")


# -------------------------------------------------------------------------- record problems


def test_missing_record_field(sub, known):
    sf.edit_record(first_record(sub), lambda d: d.pop("seed"))
    assert_error(validate_submission(sub, known=known), first_record(sub).name, "seed", "missing")


def test_wrong_protocol_version(sub, known):
    sf.edit_record(first_record(sub), lambda d: d.update(protocol_version=catalogue.PROTOCOL_VERSION + 1))
    assert_error(validate_submission(sub, known=known), first_record(sub).name, "protocol_version",
                 "not the current protocol version")


def test_not_protocol_compliant(sub, known):
    sf.edit_record(first_record(sub), lambda d: d.update(protocol_compliant=False))
    assert_error(validate_submission(sub, known=known), first_record(sub).name, "protocol_compliant")


def test_unknown_dataset_hash(sub, known):
    sf.edit_record(first_record(sub), lambda d: d["dataset"].update(content_hash="ab" * 32))
    assert_error(validate_submission(sub, known=known), first_record(sub).name,
                 "dataset.content_hash", "unknown content hash")


def test_unknown_dataset_revision_and_name(sub, known):
    sf.edit_record(first_record(sub), lambda d: d["dataset"].update(revision="deadbeef"))
    assert_error(validate_submission(sub, known=known), first_record(sub).name,
                 "dataset.revision", "unknown revision")
    sf.edit_record(first_record(sub), lambda d: d["dataset"].update(name="cheetah-runn-distractors-tiny"))
    assert_error(validate_submission(sub, known=known), first_record(sub).name,
                 "dataset.name", "did you mean")


def test_wrong_labeled_subset_hash(sub, known):
    sf.edit_record(first_record(sub), lambda d: d["dataset"].update(labeled_subset_hash=sf.sha("x")))
    assert_error(validate_submission(sub, known=known), first_record(sub).name,
                 "dataset.labeled_subset_hash", "other labeled trajectories")


def test_stored_score_rejected_in_v2(sub, known):
    sf.edit_record(first_record(sub), lambda d: d["primary"].update(normalized_score=0.5))
    assert_error(validate_submission(sub, known=known), first_record(sub).name,
                 "primary", "normalized_score must be absent")


def test_v1_stored_score_is_ignored_with_a_warning(tmp_path, refs, known):
    """A version-1 record keeps loading; its stored score is never used (scores come from the
    returns), and one that disagrees with the returns is pointed out."""
    folder = sf.write_submission(tmp_path / "subs", "old", tasks=("cheetah-run",), version=1)
    rec = first_record(folder)
    assert "record_version" not in json.loads(rec.read_text())
    sf.edit_record(rec, lambda d: d["primary"].update(normalized_score=9.9))
    s = validate_submission(folder, known=known)
    assert s.ok, errors(s)
    hits = [p for p in s.warnings if p.field == "primary.normalized_score" and "ignored" in p.message]
    assert len(hits) == 1 and rec.name in hits[0].path
    frame = scoring.records_to_frame(s.records)
    assert frame["primary_score"].max() < 2.0
    assert {"offline_probe_mse_novel", "offline_action_var_novel"} <= set(frame.columns)
    assert "offline_probe_mse_eval" not in frame.columns


def test_tampered_returns_break_the_mean(sub, known):
    sf.edit_record(first_record(sub), lambda d: d["generalization"]["returns"].__setitem__(0, 1e6))
    assert_error(validate_submission(sub, known=known), first_record(sub).name, "generalization",
                 "mean_return")


def test_missing_reference_is_reported(sub, known, tmp_path, monkeypatch):
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(tmp_path / "none.json"))
    assert_error(validate_submission(sub, known=known), first_record(sub).name,
                 "dataset.name", "no reference return")


def test_wrong_episode_seeds_and_pools(sub, known):
    def change(d):
        d["primary"]["episode_seeds"] = list(range(25))
        d["generalization"]["backgrounds"] = "train"
    sf.edit_record(first_record(sub), change)
    s = validate_submission(sub, known=known)
    assert_error(s, first_record(sub).name, "primary.episode_seeds", "evaluation seeds")
    assert_error(s, first_record(sub).name, "generalization.backgrounds", "novel")


def test_budget_and_seed_outside_protocol(sub, known):
    sf.edit_record(first_record(sub), lambda d: d.update(budget=16, seed=7))
    s = validate_submission(sub, known=known)
    assert_error(s, first_record(sub).name, "budget", "not a budget of the tiny tier")
    assert_error(s, first_record(sub).name, "seed", "not an official seed")


def test_duplicate_seed(sub, known):
    rec = first_record(sub)
    (sub / "results" / "copy-of-run.json").write_bytes(rec.read_bytes())
    assert_error(validate_submission(sub, known=known), "results", "seed", "duplicate run",
                 rec.name)


def test_json_rejects_nan_and_duplicate_keys(sub, known):
    rec = first_record(sub)
    rec.write_text(rec.read_text().replace('"budget": 2', '"budget": NaN', 1))
    assert_error(validate_submission(sub, known=known), rec.name, "", "NaN")
    rec.write_text('{"seed": 0, "seed": 1}')
    assert_error(validate_submission(sub, known=known), rec.name, "seed", "duplicate key")
    rec.write_text('{"seed": ')
    assert_error(validate_submission(sub, known=known), rec.name, "", "not valid JSON")


# ---------------------------------------------------------------------------- hostile files


def test_oversized_file(sub, known):
    rec = first_record(sub)
    rec.write_bytes(b" " * (MAX_RECORD_BYTES + 1))
    assert_error(validate_submission(sub, known=known), rec.name, "", "byte limit")
    (sub / "metadata.yaml").write_bytes(b"#" * 100_000)
    assert_error(validate_submission(sub, known=known), "metadata.yaml", "", "byte limit")


def test_non_utf8_file(sub, known):
    rec = first_record(sub)
    rec.write_bytes(rec.read_bytes().replace(b"Ada", b"\xff\xfe") + b"\xff")
    (sub / "metadata.yaml").write_bytes("authors: [Jos\u00e9]\n".encode("latin-1"))
    s = validate_submission(sub, known=known)
    assert_error(s, rec.name, "", "not UTF-8")
    assert_error(s, "metadata.yaml", "", "not UTF-8")


@pytest.mark.parametrize("name", ["..", ".hidden", "Upper", "a b", "semi;colon", "new\nline", "x" * 80])
def test_bad_submission_folder_names(tmp_path, refs, known, name):
    (tmp_path / "subs").mkdir()
    folder = tmp_path / "subs" / name
    if name != "..":
        folder.mkdir()
    s = validate_submission(folder, known=known)
    assert not s.ok and s.errors[0].message.startswith("submission folder name")


@pytest.mark.parametrize("name", ["..json", ".x.json", "a b.json", "run.json.exe", "r\u00e9sum\u00e9.json",
                                  "x<script>.json"])
def test_bad_result_file_names(sub, known, name):
    (sub / "results" / name).write_bytes(first_record(sub).read_bytes())
    s = validate_submission(sub, known=known)
    assert any(p.message.startswith("result file name") for p in s.errors), errors(s)


def test_path_traversal_via_symlinks(sub, known, tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_bytes(first_record(sub).read_bytes())
    os.symlink(outside, sub / "results" / "link.json")
    os.symlink(tmp_path, sub / "escape")
    s = validate_submission(sub, known=known)
    assert_error(s, "link.json", "", "symbolic link")
    assert_error(s, "escape", "", "symbolic link")
    os.symlink(sub, tmp_path / "subs" / "alias")
    s = validate_submission(tmp_path / "subs" / "alias", known=known)
    assert_error(s, "alias", "", "symbolic link")


def test_unexpected_entries_and_missing_results(sub, known):
    (sub / "run.py").write_text("print('never executed')")
    s = validate_submission(sub, known=known)
    assert_error(s, "run.py", "", "unexpected entry")
    for p in (sub / "results").iterdir():
        p.unlink()
    assert_error(validate_submission(sub, known=known), "results", "", "no result records")


# ----------------------------------------------------------------------- known datasets


def test_known_datasets_from_manifests_and_committed_file(tmp_path, monkeypatch):
    manifest = {"name": "cheetah-run-distractors-tiny", "revision": "r1", "source": "procedural",
                "content_hash": sf.sha("c"), "labeled_subsets": {"2": {"ids": [3, 1], "hash": sf.sha("l2")},
                                                                  "4": {"ids": [3, 1, 0, 2], "hash": sf.sha("l4")}}}
    cache = tmp_path / "home" / "datasets" / "cheetah-run-distractors-tiny"
    cache.mkdir(parents=True)
    (cache / "manifest.json").write_text(json.dumps(manifest))
    committed = tmp_path / "known.json"
    local = load_known_datasets(include_local=True, root=tmp_path / "home", committed=committed)
    errs, warns = local.check("cheetah-run-distractors-tiny", "r1", sf.sha("c"), sf.sha("l4"), 4, "procedural")
    assert not errs and "local manifest" in warns[0][1]
    assert not load_known_datasets(include_local=False, committed=committed).builds
    # adding it to the committed file makes it known without the cache, atomically
    add_known(cache / "manifest.json", committed)
    ci = load_known_datasets(include_local=False, committed=committed)
    assert ci.check("cheetah-run-distractors-tiny", "r1", sf.sha("c"), sf.sha("l2"), 2, "procedural") == ([], [])
    errs, _ = ci.check("cheetah-run-distractors-tiny", "r1", sf.sha("c"), sf.sha("l2"), 2, "davis")
    assert errs[0][0] == "source"
    assert build_from_manifest({**manifest, "protocol": False}, "m").protocol is False
    with pytest.raises(ValueError, match="non-protocol"):
        (cache / "manifest.json").write_text(json.dumps({**manifest, "protocol": False}))
        add_known(cache / "manifest.json", committed)


def test_no_known_build_lists_known_names():
    errs, _ = KnownDatasets().check("walker-run-clean-tiny", "r", sf.sha("c"), sf.sha("l"), 2, "procedural")
    assert "no known build" in errs[0][1]


# ---------------------------------------------------------------------------------- CLI


def main(argv: list[str]) -> int:
    """``dcsbench`` restricted to this area's subcommands (as dcsbench.cli.main dispatches)."""
    parser = argparse.ArgumentParser(prog="dcsbench")
    board.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def test_cli_validate_exit_codes(sub, known, tmp_path, monkeypatch, capsys):
    import dcsbench.data.known as kd

    monkeypatch.setattr(kd, "load_known_datasets", lambda include_local=True: known)
    assert main(["validate", str(sub)]) == 0
    assert "1/1 submission(s) valid" in capsys.readouterr().out
    sf.edit_record(first_record(sub), lambda d: d.update(protocol_version=99))
    assert main(["validate", "--all", str(sub.parent)]) == 1
    out = capsys.readouterr().out
    assert "protocol_version" in out and "invalid: mymethod" in out
    assert main(["validate", "--json", str(sub)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report[0]["ok"] is False and report[0]["problems"][0]["field"] == "protocol_version"


# ------------------------------------------------------------ the real submissions/ folders


def _real_submissions() -> list[Path]:
    root = REPO / "submissions"
    return discover(root) if root.is_dir() else []


def test_committed_known_datasets_file_is_well_formed():
    for build in read_committed():
        catalogue.parse_dataset_name(build.name)
        assert len(build.content_hash) == 64 and build.labeled_subset_hashes


@pytest.mark.parametrize("folder", _real_submissions(), ids=lambda p: p.name)
def test_real_submission_is_valid(folder):
    """CI gate: every folder in submissions/ validates against committed hashes only."""
    s = validate_submission(folder, include_local=False)
    assert s.ok, format_report(s, show_coverage=False)


def test_known_datasets_read_real_dataset_manifests(tiny_dataset_root, tmp_path):
    """Against a real (tiny, non-protocol) build of dcsbench.data: the pin a protocol run records
    (revision, content hash, labeled-subset hash) is found in the local manifest, the build is
    flagged non-protocol, and add-known accepts it only once it is protocol-compliant."""
    import shutil

    from dcsbench.data import prepare

    name = "cheetah-run-distractors-tiny"
    info = prepare(name, 2, root=tiny_dataset_root).info
    known = load_known_datasets(include_local=True, root=tiny_dataset_root,
                                committed=tmp_path / "none.json")
    errs, warns = known.check(name, info["revision"], info["content_hash"],
                              info["labeled_subset_hash"], 2, info["source"])
    assert [f for f, _ in errs] == ["dataset"] and "non-protocol" in errs[0][1]
    assert "local manifest" in warns[0][1]
    copy = tmp_path / "datasets" / name  # edit a copy: the fixture's build is shared
    copy.mkdir(parents=True)
    for f in ("manifest.json", "origin.json"):
        shutil.copyfile(tiny_dataset_root / "datasets" / name / f, copy / f)
    with pytest.raises(ValueError, match="non-protocol"):
        add_known(copy / "manifest.json", tmp_path / "known.json")
    data = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**data, "protocol_compliant": True}))
    add_known(copy / "manifest.json", tmp_path / "known.json")
    ci = load_known_datasets(include_local=False, committed=tmp_path / "known.json")
    assert ci.check(name, info["revision"], info["content_hash"], info["labeled_subset_hash"],
                    2, info["source"]) == ([], [])


def test_undecodable_file_names_are_reported_printably(sub, known, tmp_path):
    """File names that are not valid UTF-8 (raw bytes) are rejected and reported as text."""
    os.mkdir(os.fsencode(sub.parent) + b"/bad\xff")
    with open(os.fsencode(sub / "results") + b"/run\xfe.json", "wb") as f:
        f.write(first_record(sub).read_bytes())
    s = validate_submission(sub, known=known)
    assert_error(s, "run\\udcfe.json", "", "result file name")
    bad = validate_submission(sub.parent / os.fsdecode(b"bad\xff"), known=known)
    assert bad.name == "bad\\udcff" and "folder name" in bad.errors[0].message
    format_report(s).encode("utf-8")  # would raise on a surrogate


def test_pathological_json_and_yaml(sub, known):
    rec = first_record(sub)
    rec.write_text("[" * 200_000 + "]" * 200_000)
    assert_error(validate_submission(sub, known=known), rec.name, "", "nested too deeply")
    rec.write_text('{"budget": ' + "9" * 5000 + "}")
    assert_error(validate_submission(sub, known=known), rec.name, "", "not acceptable JSON")
    (sub / "metadata.yaml").write_text("a: " + "[" * 20_000 + "]" * 20_000)
    assert_error(validate_submission(sub, known=known), "metadata.yaml", "", "nested too deeply")
    (sub / "metadata.yaml").write_text("a: &x [1]\nb: *x\n")  # anchors/aliases (billion laughs)
    assert_error(validate_submission(sub, known=known), "metadata.yaml", "", "anchor")


def test_every_metadata_error_is_reported(sub, known):
    (sub / "metadata.yaml").write_text(json.dumps({"method": "mymethod", "authors": [],
                                                   "code_url": "javascript:x", "reference": "maybe"}))
    s = validate_submission(sub, known=known)
    fields = {p.field for p in s.errors if "metadata.yaml" in p.path}
    assert {"authors", "code_url", "reference", "description", "labels_used", "compute"} <= fields


def test_pinned_hub_revision_is_enforced(monkeypatch, tmp_path):
    """A published dataset's records must cite the registry's pinned hub revision."""
    name = sf.dataset_name("cheetah-run")
    monkeypatch.setitem(catalogue.HUB_DATASETS, name, catalogue.HubDataset("org/" + name, "a" * 40, "0" * 64))
    known = load_known_datasets(include_local=False, committed=tmp_path / "none.json")
    errs, _ = known.check(name, "b" * 40, sf.content_hash("cheetah-run"),
                          sf.subset_hash("cheetah-run", 2), 2, sf.SOURCE)
    assert errs[0][0] == "dataset.revision" and "pinned hub revision" in errs[0][1]
