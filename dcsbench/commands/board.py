"""CLI: ``validate`` (submission folders) and ``leaderboard build | publish | add-known``."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub) -> None:
    """Add ``validate`` and ``leaderboard`` to the ``dcsbench`` parser."""
    p = sub.add_parser(
        "validate", help="validate submission folders (schema, protocol, hashes, scores, coverage)",
        description="Check submission folders for the leaderboard: metadata.yaml schema, every "
                    "result record's schema and protocol version, dataset names/revisions/content "
                    "hashes/labeled-subset hashes against the known builds, duplicate runs, "
                    "normalized scores recomputed from raw returns, and coverage (tasks x budgets "
                    "x seeds). Exit code 1 if any folder has an error (for CI).")
    p.add_argument("folders", nargs="*", help="submission folders, e.g. submissions/laom")
    p.add_argument("--all", metavar="ROOT", nargs="?", const="submissions", default=None,
                   help="validate every folder under ROOT (default: submissions)")
    p.add_argument("--no-local", action="store_true",
                   help="trust only committed dataset hashes, not manifests in the local cache (as CI)")
    p.add_argument("--no-coverage", action="store_true", help="do not print coverage tables")
    p.add_argument("--allow-noncompliant", action="store_true",
                   help="accept valid runs that are not protocol-sized (fewer episodes, "
                        "non-protocol dataset) with warnings (preview only; CI does not)")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of text")
    p.set_defaults(func=run_validate)

    lb = sub.add_parser("leaderboard", help="build or publish the leaderboard site",
                        description="Aggregate valid submissions into leaderboard.json, CSV, PNG "
                                    "plots and a static HTML site; publish it to the Hub.")
    lsub = lb.add_subparsers(dest="leaderboard_command", metavar="ACTION")
    b = lsub.add_parser("build", help="aggregate submissions into a static site",
                        description="Validate every submission, aggregate the valid ones with "
                                    "rliable and write leaderboard.json, leaderboard.csv, plots "
                                    "and index.html to --out.")
    b.add_argument("--submissions", default="submissions", help="submissions folder")
    b.add_argument("--out", default="leaderboard/site", help="output folder of the site")
    b.add_argument("--reps", type=int, default=2000, help="bootstrap replications for CIs")
    b.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    b.add_argument("--include-local", action="store_true",
                   help="also trust datasets known only from the local cache (not for the official board)")
    b.add_argument("--strict", action="store_true",
                   help="exit 1 when any submission is rejected")
    b.add_argument("--allow-noncompliant", action="store_true",
                   help="preview board: include valid runs that are not protocol-sized, marked "
                        "non-protocol, with a banner")
    b.add_argument("--screenshot", metavar="PNG", default=None,
                   help="also save a headless-Chromium screenshot of the page "
                        "(e.g. studies/results/NAME/leaderboard.png)")
    b.set_defaults(func=run_build)

    pub = lsub.add_parser("publish", help="upload a built site to a Hugging Face Hub repo",
                          description="Upload the built site and aggregated JSON with "
                                      "huggingface_hub (HF_ENDPOINT and token as usual).")
    pub.add_argument("--repo", required=True, help="ORG/REPO on the hub")
    pub.add_argument("--repo-type", default="dataset", choices=("dataset", "space"),
                     help="dataset repo or static Space (default dataset)")
    pub.add_argument("--site", default="leaderboard/site", help="built site folder")
    pub.add_argument("--message", default=None, help="commit message")
    pub.add_argument("--private", action="store_true", help="create the repo private")
    pub.set_defaults(func=run_publish)

    im = lsub.add_parser("import-runs", help="copy run records into submissions/<method>/results/",
                         description="Group result records by method and copy them into "
                                     "submission folders with canonical names; writes metadata.yaml "
                                     "for the reference baselines (bc, idm, lapo, laom, laom-sup).")
    im.add_argument("runs", nargs="+", help="record files or folders (e.g. runs/)")
    im.add_argument("--submissions", default="submissions", help="submissions folder")
    im.add_argument("--method", action="append", default=None, help="import only this method (repeatable)")
    im.add_argument("--overwrite", action="store_true", help="replace differing existing records")
    im.set_defaults(func=run_import)

    ak = lsub.add_parser("add-known", help="add a local dataset build's hashes to known_datasets.json",
                         description="Read the manifest.json of a protocol build (path, or dataset "
                                     "name found in the local cache) and record its revision, "
                                     "content hash and labeled-subset hashes as known, so that "
                                     "submissions using it validate in CI.")
    ak.add_argument("manifests", nargs="+", help="manifest.json paths or dataset names")
    ak.set_defaults(func=run_add_known)
    lb.set_defaults(func=lambda args: (lb.print_help(), 2)[1])


def run_validate(args: argparse.Namespace) -> int:
    """Validate folders; print per-folder reports; return 1 on any error."""
    from dcsbench.data.known import load_known_datasets
    from dcsbench.submissions import discover, format_report, validate_submission

    folders = list(args.folders)
    if args.all is not None:
        folders += [str(p) for p in discover(args.all)]
    if not folders:
        if args.all is not None:
            print(f"no submission folders under {args.all}")
            return 0
        print("dcsbench validate: give submission folders or --all [ROOT]", file=sys.stderr)
        return 2
    known = load_known_datasets(include_local=not args.no_local)
    subs = [validate_submission(f, known=known, allow_noncompliant=args.allow_noncompliant)
            for f in folders]
    if args.json:
        out = [{"folder": str(s.path), "ok": s.ok, "records": len(s.records),
                "problems": [p.__dict__ for p in s.problems],
                "coverage": {"/".join(k): {"present": len(c.present & c.expected), "expected": len(c.expected),
                                           "missing": sorted(c.missing)}
                             for k, c in s.coverage.items()}} for s in subs]
        print(json.dumps(out, indent=2))
    else:
        for s in subs:
            print(format_report(s, show_coverage=not args.no_coverage))
        bad = [s for s in subs if not s.ok]
        print(f"{len(subs) - len(bad)}/{len(subs)} submission(s) valid"
              + (f"; invalid: {', '.join(s.name for s in bad)}" if bad else ""))
    return 0 if all(s.ok for s in subs) else 1


def run_build(args: argparse.Namespace) -> int:
    """Build the site; print a one-line summary per track."""
    from leaderboard.build import build_site

    board = build_site(args.submissions, args.out, reps=args.reps, seed=args.seed,
                       include_local=args.include_local, allow_noncompliant=args.allow_noncompliant)
    for tr in board["tracks"]:
        best = tr["rows"][0] if tr["rows"] else None
        print(f"{tr['track']}: {len(tr['rows'])} method(s)"
              + (f", top: {best['method']} (label-efficiency {best['label_efficiency']:.3f})"
                 if best and best["label_efficiency"] is not None else ""))
    for r in board["rejected"]:
        print(f"rejected {r['name']}: {r['n_errors']} error(s), e.g. {r['errors'][0]}", file=sys.stderr)
    print(f"wrote {args.out}/index.html, leaderboard.json, leaderboard.csv")
    if args.screenshot:
        from leaderboard.browser import screenshot_site

        print(f"wrote {screenshot_site(args.out, args.screenshot)}")
    return 1 if args.strict and board["rejected"] else 0


def run_publish(args: argparse.Namespace) -> int:
    """Upload the site."""
    from leaderboard.publish import publish

    where = publish(args.site, args.repo, repo_type=args.repo_type, commit_message=args.message,
                    private=args.private)
    print(f"published {args.site} to {args.repo_type} {args.repo}: {where}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Import run records into submission folders; 1 if there were conflicts."""
    from leaderboard.importer import import_runs

    summary = import_runs(args.runs, args.submissions, overwrite=args.overwrite,
                          only_methods=args.method)
    print(f"{len(summary.written)} record(s) written, {len(summary.unchanged)} unchanged")
    for p in summary.metadata_written:
        print(f"wrote {p} (reference baseline)")
    for p in summary.metadata_missing:
        print(f"missing {p}: write it (see submissions/README.md)", file=sys.stderr)
    for p in summary.conflicts:
        print(f"conflict: {p} exists with different content (use --overwrite)", file=sys.stderr)
    return 1 if summary.conflicts else 0


def run_add_known(args: argparse.Namespace) -> int:
    """Add manifests (paths or dataset names in the local cache) to the committed known list."""
    from pathlib import Path

    from dcsbench import catalogue
    from dcsbench.data.known import KNOWN_DATASETS_FILE, add_known, local_manifests

    for item in args.manifests:
        path = Path(item)
        if not path.is_file():
            catalogue.parse_dataset_name(item)
            hits = [p for p in local_manifests() if p.parent.name == item]
            if not hits:
                raise FileNotFoundError(f"no manifest.json for {item!r} in the local cache; build it "
                                        f"first (dcsbench build {item}) or pass the manifest path")
            path = hits[0]
        build = add_known(path)
        print(f"known: {build.name} revision {build.revision} content {build.content_hash[:12]}... "
              f"budgets {sorted(build.labeled_subset_hashes)} -> {KNOWN_DATASETS_FILE.name}")
    return 0
