"""Argument types and help formatting shared by every command's parser.

A value out of range is argparse's usage error (exit 2, the message names the range), raised while
parsing, before any service is opened.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from urllib.parse import urlparse

# The exit codes of every command: done, an expected failure (said on stderr), a usage error.
OK, FAILED, USAGE = 0, 1, 2

OUTPUT_RULE = "Files are written into the current folder, or into --output-dir DIR."


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it has none worth showing or already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        default = action.default
        hidden = default is None or default is False or default == [] or default is argparse.SUPPRESS
        if hidden or not action.option_strings or "default" in help_text:
            return help_text
        return f"{help_text} (default: %(default)s)"


def _span(low: float, high: float | None) -> str:
    return f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"


def _checked(value: float, text: str, low: float, high: float | None) -> None:
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {_span(low, high)}, got {text}")


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high` inclusive (no upper bound when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number {_span(low, high)}, got {text!r}") from None
        _checked(value, text, low, high)
        return value

    return parse


def float_in(low: float, high: float | None = None) -> Callable[[str], float]:
    """An argparse type: a number from `low` to `high` inclusive (no upper bound when None)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number {_span(low, high)}, got {text!r}") from None
        _checked(value, text, low, high)
        return value

    return parse


def positive_number(text: str) -> float:
    """An argparse type: a finite number greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number greater than 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


PORT = int_in(0, 65535)


def http_url(text: str) -> str:
    """An absolute http(s) URL with a host (as `Settings` wants its URLs), e.g. https://batch.example.com/mcp."""
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL, e.g. https://batch.example.com/mcp")
    return text
