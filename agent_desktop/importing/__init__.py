"""Customer import from CSV and XLSX: preview, column mapping, validation with a per-row
report, duplicate detection by E.164 with merge/new/skip, batched writes that sync.

Entry point: `ImportService(db, normalizer)`; see `service.py` for the three steps.
"""

from agent_desktop.importing.mapping import Field, MappingError, guess_field, guess_mapping
from agent_desktop.importing.readers import ENCODINGS, ImportFileError, ReadOptions
from agent_desktop.importing.results import (
    DuplicateAction,
    DuplicateGroup,
    ImportPlan,
    ImportResult,
    Preview,
    RowProblem,
)
from agent_desktop.importing.service import ImportCancelled, ImportService

__all__ = [
    "ENCODINGS",
    "DuplicateAction",
    "DuplicateGroup",
    "Field",
    "ImportCancelled",
    "ImportFileError",
    "ImportPlan",
    "ImportResult",
    "ImportService",
    "MappingError",
    "Preview",
    "ReadOptions",
    "RowProblem",
    "guess_field",
    "guess_mapping",
]
