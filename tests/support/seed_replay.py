"""Running the seeds' code against the emulator: their Python cells as a notebook would, their curl calls
as curl would, unchanged but for endpoint and key and the few substitutions listed (each must apply).
"""

from __future__ import annotations

import contextlib
import io
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx2
from azure.core.credentials import AccessToken

from tests.support.seeds import json_objects

POLL_LIMIT = 1_000  # sleeps a polling cell may take before the replay calls it a hang


@dataclass(frozen=True)
class Substitution:
    """One change to a seed's code, why it is needed, and how many times it must apply."""

    old: str
    new: str
    why: str
    count: int = 1


def substituted(code: str, substitutions: list[Substitution]) -> str:
    """`code` with each substitution applied; fails unless each applies exactly `count` times."""
    for sub in substitutions:
        found = code.count(sub.old)
        assert found == sub.count, f"substitution for {sub.why!r} applies {found} times, not {sub.count}"
        code = code.replace(sub.old, sub.new)
    return code


def substituted_cells(cells: list[str], substitutions: list[Substitution]) -> list[str]:
    """The cells of one page with the substitutions applied; each must apply `count` times over the page."""
    substituted("\n".join(cells), substitutions)  # checks the counts
    for sub in substitutions:
        cells = [cell.replace(sub.old, sub.new) for cell in cells]
    return cells


def reindented(lines: list[str], levels: list[int] | None) -> str:
    """A scraped cell whose indentation was lost, given back its levels (4 spaces each)."""
    if levels is None:
        return "\n".join(lines) + "\n"
    assert len(levels) == len(lines), f"{len(levels)} indentation levels for {len(lines)} lines"
    return "".join("    " * level + line + "\n" for level, line in zip(levels, lines, strict=True))


class EmulatorCredential:
    """Stands in for `DefaultAzureCredential` (no Entra ID offline): its token is the emulator's key,
    which the emulator accepts as a Bearer token."""

    def __init__(self, key: str) -> None:
        self.key = key

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.key, int(time.time()) + 3600)


@dataclass
class Notebook:
    """Cells run in one namespace, in order, as Jupyter runs them; `advance_clock` replaces `time.sleep`."""

    advance: Callable[[float], object]
    namespace: dict[str, Any] = field(default_factory=dict)
    sleeps: int = 0
    opened: list[IO[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.namespace.update({"__name__": "__seed__", "advance_clock": self.advance_clock, "open": self.open})

    def open(self, *args: Any, **kwargs: Any) -> IO[Any]:
        """`open` for the cells: the files they leave open (`open("test.jsonl", "rb")` passed to the SDK)
        stay open until the notebook ends, as in a Jupyter kernel, and are closed then."""
        handle: IO[Any] = open(*args, **kwargs)  # noqa: SIM115 (closed in close())
        self.opened.append(handle)
        return handle

    def close(self) -> None:
        for handle in self.opened:
            handle.close()

    def advance_clock(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps > POLL_LIMIT:
            raise RuntimeError(f"a seed cell is still polling after {POLL_LIMIT} sleeps")
        self.advance(seconds)

    def run(self, code: str, name: str) -> str:
        """Run one cell; what it printed."""
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, name, "exec"), self.namespace)
        return printed.getvalue()


def printed_json(output: str) -> list[Any]:
    return [value for _, _, value in json_objects(output)]


# curl, as the seeds call it


@dataclass
class CurlCall:
    method: str
    url: str
    headers: dict[str, str]
    form: dict[str, str]
    files: dict[str, tuple[str, bytes, str]]
    body: str | None
    output: str | None  # the file after `>`


def parse_curl(command: str) -> CurlCall:
    """The request a seed's `curl` command makes (the options the seeds use; anything else fails)."""
    words = shlex.split(command)
    assert words[0] == "curl"
    call = CurlCall("", "", {}, {}, {}, None, None)
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            call.method = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(":")
            call.headers[name.strip()] = value.strip()
        elif word == "-F":
            _form_field(call, next(rest))
        elif word == "-d":
            call.body = next(rest)
        elif word == ">":
            call.output = next(rest)
        elif word.startswith("-"):
            raise AssertionError(f"curl option {word} is not known to the replay")
        else:
            call.url = word
    if call.files and call.headers.get("Content-Type") == "multipart/form-data":
        del call.headers["Content-Type"]  # curl adds the boundary to it; httpx2 writes the whole header
    call.method = call.method or ("POST" if call.body is not None or call.files else "GET")
    return call


def _form_field(call: CurlCall, spec: str) -> None:
    """`-F name=value`, or `-F name=@path;type=...` (a file part)."""
    name, _, value = spec.partition("=")
    if not value.startswith("@"):
        call.form[name] = value
        return
    path, _, kind = value[1:].partition(";type=")
    call.files[name] = (Path(path).name, Path(path).read_bytes(), kind or "application/octet-stream")


def send(http: httpx2.Client, call: CurlCall) -> httpx2.Response:
    content = call.body.encode() if call.body is not None else None
    return http.request(
        call.method,
        call.url,
        headers=call.headers,
        data=call.form or None,
        files=call.files or None,
        content=content,
    )
