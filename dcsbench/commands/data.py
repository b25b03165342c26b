"""Dataset subcommands: ``list``, ``info``, ``download``, ``verify``, ``build``, ``publish``,
``import-hdf5``. The cache root is ``$DCSBENCH_HOME`` (default ``~/.cache/dcsbench``) or ``--root``.
"""

from __future__ import annotations

import argparse
import sys


def _root(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default=None, help="cache root (default $DCSBENCH_HOME or ~/.cache/dcsbench)")


def register(subparsers) -> None:
    """Add the dataset subcommands."""
    p = subparsers.add_parser("list", help="list dataset names and which are local / published")
    p.add_argument("--remote", action="store_true", help="also query the Hub for published datasets")
    _root(p)
    p.set_defaults(func=cmd_list)

    p = subparsers.add_parser("info", help="show a dataset's identity, sizes, returns, subsets")
    p.add_argument("name")
    _root(p)
    p.set_defaults(func=cmd_info)

    p = subparsers.add_parser("download", help="download + verify a published dataset (pinned revision), "
                              "or the paper's release by name (laom/TASK-SETTING)")
    p.add_argument("name")
    p.add_argument("--splits", default=None, help="comma-separated splits: train,eval (Hub, default "
                   "both); train,eval,labeled (laom/..., default all released)")
    p.add_argument("--repo", default=None, help="explicit Hub repo (unregistered datasets)")
    p.add_argument("--revision", default=None, help="explicit commit sha (with --repo)")
    p.add_argument("--budget", type=int, default=None, help="laom/...: only the labeled file of this budget")
    p.add_argument("--no-convert", action="store_true", help="laom/...: download only, do not convert")
    p.add_argument("--verify", action="store_true", help="laom/...: re-hash complete local files")
    _root(p)
    p.set_defaults(func=cmd_download)

    p = subparsers.add_parser("verify", help="re-hash a local dataset's shards and decoded content")
    p.add_argument("name")
    p.add_argument("--deep", action="store_true", help="also decode the shards and re-hash them")
    _root(p)
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser("build", help="collect with the expert and write a dataset locally")
    p.add_argument("name", help="e.g. cheetah-run-distractors-tiny")
    p.add_argument("--policy", default="expert", choices=["expert", "random"])
    p.add_argument("--episode-length", type=int, default=None, help="non-default: not protocol-compliant")
    p.add_argument("--n-train", type=int, default=None, help="non-default: not protocol-compliant")
    p.add_argument("--n-eval", type=int, default=None, help="non-default: not protocol-compliant")
    p.add_argument("--workers", type=int, default=1, help="parallel collection processes")
    p.add_argument("--source", default="procedural", help="background source: procedural or davis")
    p.add_argument("--davis-dir", default=None, help="DAVIS-2017 folder (source davis)")
    p.add_argument("--keep-staging", action="store_true", help="keep staged episodes afterwards")
    _root(p)
    p.set_defaults(func=cmd_build)

    p = subparsers.add_parser("publish", help="upload a local dataset to the Hub (one commit)")
    p.add_argument("name")
    p.add_argument("--repo", required=True, help="target dataset repo ORG/REPO")
    p.add_argument("--private", action="store_true")
    _root(p)
    p.set_defaults(func=cmd_publish)

    p = subparsers.add_parser("import-hdf5", help="convert the LAOM paper's HDF5 release into a dataset")
    p.add_argument("file", help="HDF5 file of train trajectories (groups '0'..'N-1')")
    p.add_argument("--name", required=True, help="dataset name to create")
    p.add_argument("--eval-file", default=None, help="HDF5 file of novel-background trajectories")
    p.add_argument("--task", default=None)
    p.add_argument("--setting", default=None)
    p.add_argument("--source", default="davis", help="background source of the data (paper: davis)")
    _root(p)
    p.set_defaults(func=cmd_import_hdf5)


def cmd_list(args) -> int:
    """Print every known dataset name with its local / published status."""
    from dcsbench import catalogue
    from dcsbench.data import store

    from dcsbench.data import laom

    local = set(store.local_datasets(args.root))
    names = catalogue.all_dataset_names() + sorted(local - set(catalogue.all_dataset_names()))
    print(f"{'dataset':40s} {'local':6s} {'hub':40s}")
    for n in names:
        hub = catalogue.HUB_DATASETS.get(n)
        where = f"{hub.repo_id}@{hub.revision[:10]}" if hub else "-"
        if args.remote and hub:
            from dcsbench.data.hub import remote_status

            try:
                st = remote_status(n)
                where += f" ({st['files']} files, {st['bytes'] / 1e6:.1f} MB)"
            except Exception as err:  # noqa: BLE001 - report and continue with the next one
                where += f" (unreachable: {type(err).__name__})"
        print(f"{n:40s} {'yes' if n in local else '-':6s} {where:40s}")
    for n, here, where in laom.list_rows(args.root):  # the paper's release (dcsbench/data/laom.py)
        print(f"{n:40s} {here:6s} {where:40s}")
    return 0


def cmd_info(args) -> int:
    """Print a dataset's manifest summary (local copy, else the Hub manifest)."""
    from dcsbench.data import laom, store

    if laom.is_laom_name(args.name):
        print(laom.info_text(args.name, args.root))
        return 0
    m = store.read_local_manifest(args.name, args.root)
    where = "local"
    if m is None:
        from dcsbench import catalogue
        from dcsbench.data.build import missing_manifest_error
        from dcsbench.data.hub import fetch_manifest

        if args.name not in catalogue.HUB_DATASETS:
            catalogue.parse_dataset_name(args.name)  # unknown names: close matches
            raise missing_manifest_error(args.name, args.root)
        m, repo_id, revision, _ = fetch_manifest(args.name)
        where = f"hub {repo_id}@{revision[:12]}"
    print(f"{m['name']}  ({where})")
    print(f"  task {m['task']}, setting {m['setting']}, tier {m['tier']}, source {m['source']}, "
          f"protocol v{m['protocol_version']}, compliant: {m['protocol_compliant']}")
    print(f"  policy {m['policy']['kind']} {m['policy'].get('card_id') or ''}")
    for s in (s for s in ("train", "eval") if s in m["splits"]):
        e = m["splits"][s]
        r = e["returns"]
        size = sum(sh["bytes"] for sh in e["shards"])
        print(f"  {s:5s}: {e['n_trajectories']} x {e['trajectory_length']} steps, pool {e['pool']}, "
              f"seeds {e['seeds'][0]}..{e['seeds'][-1]}, return {r['mean']:.1f} +- {r['std']:.1f}, "
              f"{len(e['shards'])} shard(s) {size / 1e6:.1f} MB (raw {e['raw_bytes'] / 1e6:.1f} MB)")
    print(f"  labeled subsets: {', '.join('labeled-' + b for b in m['labeled_subsets']['budgets'])}")
    print(f"  content hash {m['content_hash']}")
    return 0


def cmd_download(args) -> int:
    """Download + verify; print where the dataset is."""
    from dcsbench.data import laom
    from dcsbench.data.hub import download

    splits = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None
    if laom.is_laom_name(args.name):
        res = laom.download(args.name, splits=splits, budget=args.budget, root=args.root,
                            convert_after=not args.no_convert, verify=args.verify)
        print(f"{args.name}: {len(res['downloaded'])} file(s) downloaded, {len(res['cached'])} from the "
              f"cache, in {laom.raw_dir(args.root)}" +
              (f"; converted as {laom.local_name(args.name)!r} in {res['dataset']}" if res["dataset"] else ""))
        return 0
    splits = splits or ["train", "eval"]
    d = download(args.name, splits=splits, root=args.root, repo_id=args.repo, revision=args.revision)
    print(f"{args.name}: {', '.join(splits)} verified and cached in {d}")
    return 0


def cmd_verify(args) -> int:
    """Print each check; exit code 1 if any failed."""
    from dcsbench.data.verify import verify

    rep = verify(args.name, root=args.root, deep=args.deep)
    print(rep)
    return 0 if rep.ok else 1


def cmd_build(args) -> int:
    """Collect and write a dataset locally."""
    from dcsbench import catalogue
    from dcsbench.data.build import build_dataset

    d = build_dataset(args.name, root=args.root, policy=args.policy,
                      episode_length=args.episode_length or catalogue.EPISODE_LENGTH,
                      n_train=args.n_train, n_eval=args.n_eval, workers=args.workers,
                      source=args.source, davis_dir=args.davis_dir, keep_staging=args.keep_staging)
    print(f"built {args.name} in {d}")
    return 0


def cmd_publish(args) -> int:
    """Upload and print the registry line that pins the new revision."""
    from dcsbench.data.hub import publish, registry_snippet

    sha = publish(args.name, args.repo, root=args.root, private=args.private)
    print(f"published {args.name} to {args.repo} at commit {sha}")
    print("pin it in dcsbench/catalogue.py HUB_DATASETS:")
    print(registry_snippet(args.name, args.repo, sha, root=args.root))
    return 0


def cmd_import_hdf5(args) -> int:
    """Convert HDF5 file(s) into a local dataset."""
    from dcsbench.data.hdf5 import import_hdf5

    d = import_hdf5(args.file, args.name, task=args.task, setting=args.setting, source=args.source,
                    eval_file=args.eval_file, root=args.root)
    print(f"imported {args.file} as {args.name} in {d}", file=sys.stdout)
    return 0
