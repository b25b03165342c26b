"""The dcsbench leaderboard: validated submissions -> aggregates -> static site -> Hub.

Modules (each small, read top to bottom):

* :mod:`leaderboard.build` - validate every ``submissions/`` folder, aggregate the valid ones with
  rliable (through :mod:`dcsbench.scoring`), write ``leaderboard.json``, CSV, plots and HTML.
* :mod:`leaderboard.render` - ``leaderboard.json`` -> ``index.html`` (everything escaped, strict CSP).
* :mod:`leaderboard.plots` - the per-track PNGs (IQM bars with CIs; score vs budget per task).
* :mod:`leaderboard.publish` - upload a built site to a Hub dataset repo or static Space.
* :mod:`leaderboard.importer` - copy run records into ``submissions/<method>/results/``.
* :mod:`leaderboard.browser` - headless Chromium (DOM dump, screenshots) for tests and docs.

Validation itself lives in :mod:`dcsbench.submissions` (and :mod:`dcsbench.data.known`), so
method authors can run it without this package's plotting dependencies. CLI:
``dcsbench validate`` and ``dcsbench leaderboard build|publish|import-runs|add-known``.
"""
