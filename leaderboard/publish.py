"""Publish a built leaderboard site to a Hugging Face Hub repository (dataset or static Space).

The site folder (``index.html``, ``style.css``, ``sort.js``, ``plots/*.png``, ``leaderboard.json``,
``leaderboard.csv``) is uploaded as one commit with :func:`huggingface_hub.HfApi.upload_folder`,
together with a generated ``README.md`` whose YAML header makes a Space serve the page statically
(``sdk: static``) or describes the dataset repo. The endpoint comes from ``HF_ENDPOINT`` (tests
point it at a local server) and the token from the usual huggingface_hub configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: Files a built site must contain before it can be published.
REQUIRED_FILES = ("index.html", "leaderboard.json", "leaderboard.csv", "style.css", "sort.js")

#: Only these suffixes are uploaded (the site is data and static assets, nothing else).
UPLOAD_SUFFIXES = {".html", ".json", ".csv", ".css", ".js", ".png"}


def repo_readme(board: dict[str, Any], repo_type: str) -> str:
    """README.md for the hub repo: a Space header (static SDK) or a dataset card header."""
    tracks = ", ".join(t["track"] for t in board.get("tracks", [])) or "none yet"
    if repo_type == "space":
        header = ("---\ntitle: dcsbench leaderboard\nemoji: 🎬\ncolorFrom: blue\ncolorTo: green\n"
                  "sdk: static\napp_file: index.html\npinned: false\n---\n")
    else:
        header = "---\nlicense: apache-2.0\npretty_name: dcsbench leaderboard\ntags:\n- leaderboard\n---\n"
    return (header + "\n# dcsbench leaderboard\n\n"
            "Aggregated results of latent-action-learning methods on the Distracting Control Suite "
            "benchmark (dcsbench). Open `index.html` for the tables and plots; `leaderboard.json` and "
            f"`leaderboard.csv` hold the numbers.\n\n- protocol version: {board.get('protocol_version')}\n"
            f"- generated: {board.get('generated')}\n- tracks: {tracks}\n")


def publish(site: str | os.PathLike, repo_id: str, repo_type: str = "dataset",
            commit_message: str | None = None, private: bool = False, token: str | None = None,
            create: bool = True) -> str:
    """Upload a built site to ``repo_id`` and return the commit URL/oid reported by the hub.

    Args:
        site: folder written by ``dcsbench leaderboard build``.
        repo_id: ``ORG/REPO`` on the hub.
        repo_type: ``"dataset"`` or ``"space"`` (a static Space serves ``index.html``).
        commit_message: defaults to "Update leaderboard (<generated>)".
        private: create the repo private if it does not exist.
        token: hub token (default: huggingface_hub's configured token).
        create: create the repo if missing (``exist_ok``).
    """
    from huggingface_hub import HfApi

    from dcsbench.catalogue import check_choice

    check_choice("repo type", repo_type, ("dataset", "space"))
    if repo_id.count("/") != 1 or any(not part for part in repo_id.split("/")):
        raise ValueError(f"--repo must look like ORG/REPO, got {repo_id!r}")
    site = Path(site)
    missing = [f for f in REQUIRED_FILES if not (site / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{site} is not a built leaderboard site (missing {', '.join(missing)}); "
                                "run `dcsbench leaderboard build` first")
    board = json.loads((site / "leaderboard.json").read_text(encoding="utf-8"))
    api = HfApi(token=token)
    if create and not api.repo_exists(repo_id, repo_type=repo_type):
        kwargs = {"space_sdk": "static"} if repo_type == "space" else {}
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **kwargs)
    with tempfile.TemporaryDirectory(prefix="dcsbench-publish-") as tmp:
        stage = Path(tmp)
        for path in sorted(site.rglob("*")):
            if path.is_symlink() or not path.is_file() or path.suffix not in UPLOAD_SUFFIXES:
                continue
            if any(part.startswith(".") for part in path.relative_to(site).parts):
                continue
            dest = stage / path.relative_to(site)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        (stage / "README.md").write_text(repo_readme(board, repo_type), encoding="utf-8")
        info = api.upload_folder(repo_id=repo_id, repo_type=repo_type, folder_path=stage,
                                 commit_message=commit_message or f"Update leaderboard ({board.get('generated')})")
    return str(getattr(info, "commit_url", None) or getattr(info, "oid", None) or info)
