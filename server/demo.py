"""`aoai-batch-mcp demo`: the whole flow through a real MCP client, over stdio, on the embedded emulator.

It spawns `python -m server serve` as an MCP client would, with a temporary home and workspace and no
Azure or OpenAI variables (so the server runs its embedded emulator), then calls the tools in the order
an assistant would: build, validate, upload, create, watch, fetch. Any failure stops it with a message
naming the step, and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import anyio
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from pydantic import BaseModel, ValidationError

from aoai_batch.fileio import free_path
from aoai_batch.models import Batch, BuildResult, FetchSummary, UploadResult, ValidationReport
from aoai_batch.text import truncate
from server.cli_args import FAILED, OK, USAGE, positive_number

DEPLOYMENT = "gpt-4o-mini"
# Emulated seconds per real second: the emulated batch's ~20 minutes of validating, running and finalizing
# pass in about 4 s, slow enough to watch the counts advance.
TIME_SCALE = 300.0
# How often get_batch asks the emulator while it waits for a change (the emulator's default is 1 s).
POLL_SECONDS = 0.25
WAIT_SECONDS = 5
TOOLS = (
    "build_batch_file",
    "validate_batch_file",
    "upload_file",
    "create_batch",
    "get_batch",
    "list_batches",
    "cancel_batch",
    "fetch_results",
)
SAMPLE_PROMPTS = (
    "When was Microsoft founded?",
    "When was the first XBOX released?",
    "What is Altair BASIC?",
    "Name three uses of a batch API.",
    "Explain JSON Lines in one sentence.",
    "What does a 429 status code mean?",
    "Translate 'good morning' into French.",
    "What is the boiling point of water at sea level?",
    "Summarise the plot of Hamlet in one sentence.",
    "What is 17 multiplied by 23?",
    "Give a synonym for 'rapid'.",
    "Why is the sky blue? One sentence.",
)
SYSTEM_PROMPT = "You are an AI assistant that answers in one short sentence."


M = TypeVar("M", bound=BaseModel)


class DemoFailed(Exception):
    """A step of the demo did not do what it should; the message says which and why."""


@dataclass(frozen=True)
class Plan:
    home: Path
    workspace: Path
    time_scale: float
    timeout: float
    server_log: Path


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole flow through a real MCP client on the embedded emulator",
        description=(
            "Start the server over stdio under an MCP client and run build -> validate -> upload -> create "
            "-> watch -> fetch_results on the embedded emulator. Needs no credentials; exits 0 on success."
        ),
    )
    parser.add_argument("--home", type=Path, help="state folder for the run (default: a new temporary folder)")
    parser.add_argument("--workspace", type=Path, help="where the batch and results files go (default: HOME/workspace)")
    parser.add_argument(
        "--time-scale", type=positive_number, default=TIME_SCALE, help="emulated seconds per real second"
    )
    parser.add_argument("--timeout", type=positive_number, default=120.0, help="give up after this many seconds")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    home = (args.home or Path(tempfile.mkdtemp(prefix="aoai-batch-demo-"))).expanduser().resolve()
    workspace = (args.workspace or home / "workspace").expanduser().resolve()
    try:
        for folder in (home, workspace):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"demo: cannot use {exc.filename} as a folder: {exc.strerror}", file=sys.stderr)
        return USAGE
    plan = Plan(home, workspace, args.time_scale, args.timeout, free_path(home / "demo-server.log"))
    started = time.monotonic()
    try:
        anyio.run(_demo, plan)
    except DemoFailed as exc:
        _report_failure(str(exc), plan)
        return FAILED
    except TimeoutError:
        _report_failure(f"the demo did not finish within {plan.timeout:g} s (try --timeout)", plan)
        return FAILED
    except KeyboardInterrupt:
        print("\ndemo interrupted", file=sys.stderr)
        return 130
    print(f"\nDone in {time.monotonic() - started:.1f} s. Files are in {workspace}")
    print("Next: add the server to your MCP client (see README), or set AZURE_OPENAI_ENDPOINT to use Azure.")
    return OK


def server_parameters(plan: Plan) -> StdioServerParameters:
    """How the demo spawns the server: this Python, the embedded emulator, nothing from the caller's cloud setup.

    The client passes only a safe base environment (PATH, HOME...) plus `env`, so Azure and OpenAI
    variables of the calling shell never reach the server.
    """
    project_root = Path(__file__).resolve().parents[1]
    env = {
        "AOAI_BATCH_PROVIDER": "emulator",
        "AOAI_BATCH_HOME": str(plan.home),
        "AOAI_BATCH_WORKSPACE": str(plan.workspace),
        "AOAI_EMULATOR_TIME_SCALE": str(plan.time_scale),
        "AOAI_BATCH_POLL_SECONDS": str(POLL_SECONDS),
        "PYTHONPATH": str(project_root),
    }
    return StdioServerParameters(command=sys.executable, args=["-m", "server", "serve"], env=env)


async def _demo(plan: Plan) -> None:
    with anyio.fail_after(plan.timeout), ExitStack() as files:
        server_log = files.enter_context(plan.server_log.open("w", encoding="utf-8"))
        print(f"Starting the server over stdio (home {plan.home})")
        failure: DemoFailed | None = None
        try:
            async with Client(stdio_client(server_parameters(plan), errlog=server_log)) as client:
                try:
                    await _flow(client, plan)
                except DemoFailed as exc:  # caught here, before the client's task group wraps it in a group
                    failure = exc
        except* (MCPError, OSError) as group:
            raise DemoFailed(f"the server did not answer over stdio: {_first(group)}") from None
        if failure:
            raise failure


async def _flow(client: Client, plan: Plan) -> None:
    await _check_server(client)
    batch_file = free_path(plan.workspace / "demo-questions.jsonl")

    _step(1, f"build_batch_file: {len(SAMPLE_PROMPTS)} prompts for deployment {DEPLOYMENT}")
    built = await _call(
        client,
        BuildResult,
        "build_batch_file",
        {
            "deployment": DEPLOYMENT,
            "prompts": list(SAMPLE_PROMPTS),
            "system_prompt": SYSTEM_PROMPT,
            "body": {"max_tokens": 100},
            "output_path": str(batch_file),
        },
    )
    if len(built.files) != 1:
        raise DemoFailed(f"build_batch_file wrote {len(built.files)} files; expected one")
    path = built.files[0].path
    _detail(f"wrote {path} ({built.requests} requests, {built.files[0].bytes} bytes)")

    _step(2, "validate_batch_file")
    report = await _call(client, ValidationReport, "validate_batch_file", {"path": path})
    if not report.ok:
        raise DemoFailed(f"validate_batch_file found issues: {report.issue_counts}")
    _detail(f"ok: {report.requests} requests, about {report.estimated_input_tokens} input tokens")

    _step(3, "upload_file")
    uploaded = await _call(client, UploadResult, "upload_file", {"path": path})
    _detail(f"file {uploaded.file.id} ({uploaded.file.status})")

    _step(4, "create_batch")
    batch = await _call(
        client,
        Batch,
        "create_batch",
        {"input_file_id": uploaded.file.id, "endpoint": "/chat/completions", "metadata": {"source": "demo"}},
    )
    _detail(f"batch {batch.id} ({batch.status}, backend {batch.backend})")

    _step(5, "get_batch: watching until it finishes")
    batch = await _watch(client, batch)
    if batch.status != "completed":
        raise DemoFailed(f"batch {batch.id} ended {batch.status}: {[e.message for e in batch.errors]}")

    _step(6, "fetch_results")
    summary = await _call(client, FetchSummary, "fetch_results", {"batch_id": batch.id, "preview": 5})
    _check_results(summary, len(SAMPLE_PROMPTS))
    counts = summary.counts
    _detail(f"{counts.succeeded} succeeded, {counts.failed} failed, {counts.missing} missing")
    _detail(f"tokens: {summary.usage.prompt_tokens} in, {summary.usage.completion_tokens} out")
    _detail(f"results: {summary.results_path}")
    _print_preview(summary)


async def _check_server(client: Client) -> None:
    listed = await client.list_tools()
    missing = sorted(set(TOOLS) - {tool.name for tool in listed.tools})
    if missing:
        raise DemoFailed(f"the server does not offer the tools {missing}")
    config = await client.read_resource("batch://config")
    text = getattr(config.contents[0], "text", None) if config.contents else None
    backend = json.loads(text).get("backend") if text else None
    if backend != "emulator":
        raise DemoFailed(f"the server runs on {backend!r}, not the embedded emulator; the demo never calls a cloud")
    print(f"Connected: {len(listed.tools)} tools, backend {backend}")


async def _call(
    client: Client, model: type[M], tool: str, arguments: dict[str, Any], bar: BatchProgress | None = None
) -> M:
    try:
        result = await client.call_tool(tool, arguments, progress_callback=bar.on_progress if bar else None)
    except MCPError as exc:
        raise DemoFailed(f"{tool} failed: {exc}") from exc
    if result.is_error:
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise DemoFailed(f"{tool} returned an error: {text}")
    try:
        return model.model_validate(result.structured_content)
    except ValidationError as exc:
        raise DemoFailed(f"{tool} returned an unexpected result: {exc}") from exc


async def _watch(client: Client, batch: Batch) -> Batch:
    bar = BatchProgress(sys.stdout)
    bar.show(batch)
    while not batch.terminal:
        arguments = {"batch_id": batch.id, "wait_seconds": WAIT_SECONDS}
        batch = await _call(client, Batch, "get_batch", arguments, bar)
        bar.show(batch)
    bar.close()
    return batch


class BatchProgress:
    """A live one-line bar on a terminal; elsewhere (logs, CI, tests) a line per change of the batch."""

    WIDTH = 30

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.share = 0.0
        self.label = ""
        self.last = ""

    def show(self, batch: Batch) -> None:
        counts = batch.request_counts
        done = counts.completed + counts.failed
        if counts.total:
            self.share = done / counts.total
            self.label = f"{batch.status:<11} {done}/{counts.total} requests"
        else:
            self.share = 1.0 if batch.status == "completed" else 0.0
            self.label = batch.status
        self._draw(self.label)

    async def on_progress(self, progress: float, total: float | None, message: str | None) -> None:
        # The server reports how long get_batch has waited for a change: a sign of life, not of completion.
        if self.live and total:
            self._draw(f"{self.label}  (waiting {progress:.0f}/{total:.0f} s)")

    def _draw(self, label: str) -> None:
        share = min(max(self.share, 0.0), 1.0)
        filled = round(share * self.WIDTH)
        line = f"  [{'#' * filled}{'.' * (self.WIDTH - filled)}] {share:4.0%} {label}"
        if line == self.last:
            return
        self.last = line
        self.stream.write(f"\r{line}\x1b[K" if self.live else f"{line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


def _check_results(summary: FetchSummary, expected: int) -> None:
    counts = summary.counts
    if counts.succeeded + counts.failed + counts.missing != expected:
        raise DemoFailed(f"fetch_results accounted for {counts} rows; expected {expected}")
    if not summary.results_path or not Path(summary.results_path).is_file():
        raise DemoFailed(f"fetch_results reported no results file ({summary.results_path})")
    with Path(summary.results_path).open(encoding="utf-8") as rows:
        written = sum(1 for line in rows if line.strip())
    if summary.format == "jsonl" and written != expected:
        raise DemoFailed(f"the results file has {written} rows; expected {expected}")


def _print_preview(summary: FetchSummary) -> None:
    width = max(shutil.get_terminal_size((100, 20)).columns, 60)
    text_width = (width - 24) // 2
    rows = [("custom_id", "status", "input", "answer")]
    rows += [(row.custom_id, row.status, row.input or "", row.content or "") for row in summary.preview]
    print()
    for custom_id, status, question, answer in rows:
        print(
            f"  {_cut(custom_id, 10):<10} {_cut(status, 9):<9} {_cut(question, text_width):<{text_width}} "
            f"{_cut(answer, text_width)}"
        )


def _cut(text: str, width: int) -> str:
    return truncate(" ".join(text.split()), width)


def _step(number: int, title: str) -> None:
    print(f"\n[{number}/6] {title}")


def _detail(line: str) -> None:
    print(f"  {line}")


def _report_failure(message: str, plan: Plan) -> None:
    print(f"\ndemo failed: {message}", file=sys.stderr)
    tail = _tail(plan.server_log, 20)
    if tail:
        print(f"last lines of the server's log ({plan.server_log}):", file=sys.stderr)
        for line in tail:
            print(f"  | {line}", file=sys.stderr)


def _tail(path: Path, count: int) -> Sequence[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[-count:]
