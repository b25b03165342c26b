"""Submission folders: reading them safely and validating them for the leaderboard.

A submission is *data only*::

    submissions/<method>/
        metadata.yaml        who, what, links, labels used, compute (see :class:`Metadata`)
        README.md            optional free text (never rendered as HTML)
        results/*.json       result records written by ``dcsbench run`` (dcsbench.results)

Nothing from a submission is imported or executed. YAML is read with ``yaml.safe_load`` after a
token scan that rejects tags, anchors and aliases; JSON rejects NaN/Infinity and duplicate keys;
every file is size-bounded, must be UTF-8, must be a regular file (no symlinks) and must have a
plain name (no path separators, no leading dot, no odd characters).

:func:`validate_submission` returns a :class:`Submission` with every problem found (not only the
first), each naming the file and the field, and the coverage of tasks x budgets x seeds.

Modules: :mod:`~dcsbench.submissions.safe_io` (bounded, safe readers), :mod:`~.metadata`
(``metadata.yaml`` and the reference allow-list), :mod:`~.validate` (records, rules, coverage,
report).
"""

from dcsbench.submissions.metadata import (REFERENCE_SUBMISSIONS_FILE, Metadata,
                                           check_url, load_metadata, reference_submissions)
from dcsbench.submissions.safe_io import (ALLOWED_TOP_LEVEL, MAX_METADATA_BYTES,
                                          MAX_README_BYTES, MAX_RESULT_FILES, RESULT_FILE_NAME,
                                          SUBMISSION_NAME, Problem, SubmissionFileError,
                                          check_name, load_json, load_yaml, printable,
                                          read_text_file)
from dcsbench.submissions.validate import (SCORE_ATOL, SCORE_RTOL, Coverage,
                                           Submission, check_record, coverage_of, discover,
                                           format_report, validate_submission)

__all__ = ["REFERENCE_SUBMISSIONS_FILE", "Metadata", "check_url", "load_metadata",
           "reference_submissions", "ALLOWED_TOP_LEVEL", "MAX_METADATA_BYTES", "MAX_README_BYTES",
           "MAX_RESULT_FILES", "RESULT_FILE_NAME", "SUBMISSION_NAME", "Problem",
           "SubmissionFileError", "check_name", "load_json", "load_yaml", "printable",
           "read_text_file", "SCORE_ATOL", "SCORE_RTOL", "Coverage", "Submission", "check_record",
           "coverage_of", "discover", "format_report", "validate_submission"]
