"""The one name of a result record's file: :func:`record_name`.

Every writer of records names its files with it (``[method]__dataset__[source]__b{budget}__s{seed}.json``),
leaving out the parts its folder already says or that it cannot know yet:

* ``dcsbench run`` / :func:`dcsbench.evaluate` (:func:`dcsbench.protocol.record_path`): every
  part, in one flat folder: ``bc__cheetah-run-distractors-tiny__procedural__b8__s0.json``.
* sweeps and studies (:func:`dcsbench.sweep.expand`, :func:`dcsbench.study.plan_specs`): one
  folder per method, and no source (the path is fixed before the data, which carries the source,
  is opened): ``runs/bc/cheetah-run-distractors-tiny__b8__s0.json``; a study's reference runs
  ``reference/cheetah-run-distractors-tiny__ball__s0.json``.
* submissions (:func:`leaderboard.importer.result_file_name`): one folder per method:
  ``submissions/bc/results/cheetah-run-distractors-tiny__procedural__b8__s0.json``.

Readers never parse the names (records carry their own identity), so every layout above loads.
"""

from __future__ import annotations

__all__ = ["record_name"]


def record_name(method: str | None, dataset: str, source: str | None, budget: int | str,
                seed: int) -> str:
    """File name of a record: ``"__"``-joined ``method``, ``dataset``, ``source``,
    ``b{budget}``, ``s{seed}``, then ``.json``; ``method`` or ``source`` None is left out.

    >>> record_name("bc", "cheetah-run-distractors-tiny", "procedural", 8, 0)
    'bc__cheetah-run-distractors-tiny__procedural__b8__s0.json'
    >>> record_name(None, "cheetah-run-distractors-tiny", None, "all", 0)
    'cheetah-run-distractors-tiny__ball__s0.json'
    """
    parts = [method, dataset, source, f"b{budget}", f"s{seed}"]
    return "__".join(str(p) for p in parts if p is not None) + ".json"
