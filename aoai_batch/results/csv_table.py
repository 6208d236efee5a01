"""The results file as CSV: one row per request, usage and error flattened into columns, safe in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import IO, Any

from aoai_batch.results.lines import answer_fields

CSV_COLUMNS = (
    "custom_id",
    "status",
    "input",
    "content",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "error_code",
    "error_message",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str | None) -> str | None:
    """Text a spreadsheet will show, not run: model output starting like a formula gets a leading quote.

    The CSV is for people opening it in a spreadsheet (OWASP's CSV-injection advice); the JSONL keeps
    the text exactly.
    """
    if text and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class CsvTable:
    """Rows written through the csv module, which quotes commas, quotes and newlines."""

    def __init__(self, handle: IO[bytes], extra_columns: Sequence[str] = ()) -> None:
        self.text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        self.csv = csv.writer(self.text)
        self.csv.writerow((*CSV_COLUMNS, *extra_columns))

    def write(
        self, custom_id: str, question: str | None, status: str, columns: bytes, extra: Sequence[object] = ()
    ) -> None:
        """One request's row: `columns` are its answer columns as the join keeps them (see `lines`); `extra`,
        the cells of the extra columns (a run's batch and attempts, the source row's columns)."""
        fields = answer_fields(columns)
        usage = fields["usage"] or {}
        error = fields["error"] or {}
        self.csv.writerow(
            (
                spreadsheet_safe(custom_id),
                status,
                spreadsheet_safe(question),
                spreadsheet_safe(fields["content"]),
                fields["finish_reason"],
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                usage.get("total_tokens"),
                error.get("code"),
                spreadsheet_safe(error.get("message")),
                *(spreadsheet_safe(cell) if isinstance(cell, str) else cell for cell in extra),
            )
        )

    def write_row(self, row: Mapping[str, Any], extra: Sequence[object] = ()) -> None:
        """A row as the JSONL results hold it (a dict of the results file's fields), and the extra columns' cells."""
        usage = row.get("usage") or {}
        error = row.get("error") or {}
        self.csv.writerow(
            (
                spreadsheet_safe(row.get("custom_id")),
                row.get("status"),
                spreadsheet_safe(row.get("input")),
                spreadsheet_safe(row.get("content")),
                row.get("finish_reason"),
                usage.get("prompt_tokens"),
                usage.get("completion_tokens"),
                usage.get("total_tokens"),
                error.get("code"),
                spreadsheet_safe(error.get("message")),
                *(spreadsheet_safe(cell) if isinstance(cell, str) else cell for cell in extra),
            )
        )

    def close(self) -> None:
        self.text.flush()
        self.text.detach()  # the atomic writer owns the file and still has to sync and publish it
