"""Report of a study folder: ``python studies/report.py STUDY [--out DIR]``.

The code is :mod:`dcsbench.study_report` (its docstring has the inputs and outputs); this file
is the command, kept beside the plans and results it serves.
"""

from __future__ import annotations

import sys

from dcsbench.study_report import NOTES_MARKER, main, write_report  # noqa: F401  (the script's API)

if __name__ == "__main__":
    sys.exit(main())
