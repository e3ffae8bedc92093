"""Exceptions raised by linkrisk: the CLI's error messages, with the file, row and column."""

from __future__ import annotations

import re
from typing import Optional

_ROW = re.compile(r"\brow (\d+)")
_COLUMN = re.compile(r"\bcolumn (?:`([^`]+)`|(\d+))")


class LinkriskError(ValueError):
    """Base class of linkrisk's errors. ``str(err)`` is the text the CLI prints after
    ``linkrisk: error:``; ``message`` is the part after the file name."""

    def __init__(self, text: str, message: Optional[str] = None, file: Optional[str] = None):
        super().__init__(text)
        self.message: str = message if message is not None else text
        #: The file at fault (``"<metadata>"`` / ``"<array:NAME>"`` for in-memory input), or None.
        self.file: Optional[str] = file
        row = _ROW.search(self.message)
        #: The row named by the message (as it names it: a CSV line number, or 0-based
        #: for arrays, Parquet and in-memory metadata), or None.
        self.row: Optional[int] = int(row.group(1)) if row else None
        column = _COLUMN.search(self.message)
        #: The column named by the message: a metadata column name or a view's 0-based
        #: column index (as text), or None.
        self.column: Optional[str] = (column.group(1) or column.group(2)) if column else None


class InputError(LinkriskError):
    """The input breaks the cohort contract (docs/FORMATS.md): shape mismatch, NaN/Inf,
    zero vectors, duplicate ids, a missing column or view... The CLI exits 2 with it."""


class ConfigError(LinkriskError):
    """A setting is invalid (the CLI's bad flag value): the message names it and the
    accepted values."""
