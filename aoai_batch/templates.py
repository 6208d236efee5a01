"""`{column}` templates: placeholders are replaced by a row's values, and nothing else happens.

No attribute or index access, no format specs, no evaluation: `{a.b}` names a column called `a.b`.
`{{` and `}}` stand for literal braces.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from aoai_batch.errors import InvalidInput


class Template:
    """A parsed template; `render(row, row_number)` fills it in."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.literals, self.fields = _parse(text)
        # A format string of our own making: positional fields only, every literal brace doubled, so
        # str.format does nothing but join (it is the fastest join for the common all-text row).
        escaped = [literal.replace("{", "{{").replace("}", "}}") for literal in self.literals]
        self.format = escaped[0] + "".join(f"{{{n}}}{literal}" for n, literal in enumerate(escaped[1:]))

    def render(self, row: Mapping[str, object], row_number: int) -> str:
        values = [row.get(field) for field in self.fields]
        for value in values:
            if type(value) is not str:
                return self.format.format(*(self._cell(row, field, row_number) for field in self.fields))
        return self.format.format(*values)

    def _cell(self, row: Mapping[str, object], field: str, row_number: int) -> str:
        if field in row or not _looks_literal(field):
            return cell_text(row, field, row_number)
        raise InvalidInput(
            f"The template's {{{field}}} is not a column of row {row_number}; if it is meant as literal text "
            f"(e.g. a JSON example), double its braces: {{{{{field}}}}}."
        )


def cell_text(row: Mapping[str, object], column: str, row_number: int) -> str:
    """A row's value as text; a missing column is an InvalidInput naming the row and the column."""
    value = row.get(column)
    if value is None:
        known = ", ".join(repr(name) for name in list(row)[:20]) or "none"
        raise InvalidInput(f"Row {row_number} has no value for column {column!r} (its columns: {known}).")
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _looks_literal(field: str) -> bool:
    """A placeholder that reads like JSON or code rather than a column name."""
    return any(char in field for char in "\"':\n")


def _parse(text: str) -> tuple[list[str], list[str]]:
    """Split a template into literal texts and column names (one more literal than names)."""
    literals: list[str] = []
    fields: list[str] = []
    current: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        pair = text[index : index + 2]
        if pair in ("{{", "}}"):
            current.append(char)
            index += 2
        elif char == "{":
            end = text.find("}", index + 1)
            name = text[index + 1 : end] if end != -1 else ""
            if end == -1 or not name.strip() or "{" in name:
                raise InvalidInput(
                    f"The template has an unclosed or empty '{{' at character {index + 1}; write {{column}} for "
                    "a value, and double a literal brace ({{ and }}), as in a JSON example."
                )
            literals.append("".join(current))
            fields.append(name.strip())
            current = []
            index = end + 1
        elif char == "}":
            raise InvalidInput(
                f"The template has a lone '}}' at character {index + 1}; write }}}} for a literal brace."
            )
        else:
            current.append(char)
            index += 1
    literals.append("".join(current))
    return literals, fields
