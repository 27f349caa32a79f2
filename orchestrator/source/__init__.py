"""Data sources (claims 4, 7): hand rows to source proxies, or answer the hosting node directly.

  rows       reading rows from CSV or records, and the column mapping from arguments or JSON
  upload     hand_rows: the same rows to one or several proxies
  direct     DirectSource: a source's own rows as a RowHolder, in-process (direct mode)
  audit      audit_source: check the bills of your rows against your holders' records and the chain
"""
from typing import TYPE_CHECKING

from orchestrator.lazy import lazy_exports

# Imported on first use: reading rows needs none of the direct source's training code.
__getattr__, __dir__ = lazy_exports(__name__, {
    "direct": ("DirectSource",),
    "rows": ("mapping_from_args", "mapping_from_json", "read_csv", "rows_from_records"),
    "upload": ("hand_rows",),
})

if TYPE_CHECKING:  # the same names, for the type checker only (it cannot follow __getattr__)
    from .direct import DirectSource
    from .rows import mapping_from_args, mapping_from_json, read_csv, rows_from_records
    from .upload import hand_rows
