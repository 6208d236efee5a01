"""`validate` and `build`: the batch-file commands, local only (no service, no network).

`validate` exits 0 when the file is valid, 1 when it has issues, 2 on usage errors or an unreadable file.
`build` exits 0 when the files are written, 1 when the input is refused (nothing is written), 2 on usage.
`--json` prints the result model's JSON; otherwise a short readable summary.

`validate` imports only the validator (no pydantic, no settings object, no service): its whole process
is held to 1.4x a bare read-and-parse loop on a 150 MB file (bench/validate.py), and
tests/server/test_cli_imports.py keeps it so. `build` imports the builder when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from aoai_batch.errors import InvalidInput
from aoai_batch.limits import FileRules, file_limits
from aoai_batch.validation import Findings, check_file
from server.cli_args import FAILED, OK, OUTPUT_RULE, USAGE, int_in
from server.cli_errors import report_error

if TYPE_CHECKING:
    from aoai_batch.models import BuildResult


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    validate = subparsers.add_parser(
        "validate",
        help="Check a JSONL batch file against Azure's rules.",
        description="Check a JSONL batch file against Azure's rules. Exit 0 valid, 1 issues, 2 unreadable.",
    )
    validate.add_argument("file", type=Path, help="the JSONL batch file")
    validate.add_argument(
        "--deployment",
        action="append",
        dest="deployments",
        metavar="NAME",
        help="a deployment that exists (repeatable); other models are reported as model_not_found",
    )
    validate.add_argument("--no-tokens", action="store_true", help="skip the input-token estimate")
    _add_limits(validate)
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    validate.set_defaults(run=run_validate)

    build = subparsers.add_parser(
        "build",
        help="Build a JSONL batch file from prompts, requests or a CSV/JSONL/JSON file.",
        description=f"Build a JSONL batch file (split into several when a limit would be passed). {OUTPUT_RULE}",
    )
    build.add_argument("--deployment", required=True, help="the Global Batch deployment name (body.model)")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", action="append", dest="prompts", metavar="TEXT", help="a prompt (repeatable)")
    source.add_argument(
        "--requests",
        type=Path,
        metavar="FILE",
        help="a JSON array of request objects (custom_id?, messages or prompt, body fields)",
    )
    source.add_argument("--source", type=Path, metavar="FILE", help="a CSV, JSONL or JSON-array file of rows")
    build.add_argument("--template", help="the prompt with {column} placeholders, e.g. 'Summarize: {text}'")
    build.add_argument("--system-prompt", help="a system prompt for every request")
    build.add_argument("--id-field", help="the column that holds each row's custom_id (default: generated)")
    build.add_argument("--image-field", help="the column with an image path or URL")
    build.add_argument(
        "--endpoint",
        default="/chat/completions",
        choices=["/chat/completions", "/responses"],
        help="the API every request calls",
    )
    build.add_argument(
        "--body",
        type=_json_object,
        default={},
        metavar="JSON",
        help="fields for every request body, e.g. '{\"max_tokens\": 200}'",
    )
    build.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="the folder to write into (default: the current folder; created if missing)",
    )
    build.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="the file's name, inside --output-dir (default: SOURCE.batch.jsonl for --source, else batch.jsonl, "
        "with a number added rather than replace a file)",
    )
    build.add_argument("--overwrite", action="store_true", help="replace existing output files")
    _add_limits(build)
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.set_defaults(run=run_build)


def _add_limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-requests", type=int_in(1), metavar="N", help="requests per file (default: AOAI_BATCH_MAX_REQUESTS)"
    )
    parser.add_argument(
        "--max-bytes", type=int_in(1), metavar="N", help="bytes per file (default: AOAI_BATCH_MAX_BYTES)"
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"max_tokens\": 200}'")
    return value


def _rules(args: argparse.Namespace, deployments: Sequence[str] | None) -> FileRules | None:
    """The file rules: the limits from the flags, else from the environment; None after saying what is wrong."""
    try:
        limits = file_limits()
    except InvalidInput as exc:
        report_error(exc, as_json=args.json)
        return None
    return dataclasses.replace(
        limits,
        max_requests=limits.max_requests if args.max_requests is None else args.max_requests,
        max_bytes=limits.max_bytes if args.max_bytes is None else args.max_bytes,
        deployments=tuple(deployments) if deployments is not None else None,
    )


def run_validate(args: argparse.Namespace) -> int:
    rules = _rules(args, args.deployments)
    if rules is None:
        return USAGE
    try:
        report = check_file(args.file, **rules.keywords(), count_tokens=not args.no_tokens)
    except InvalidInput as exc:
        report_error(exc, as_json=args.json)
        return USAGE
    print(_report_json(report) if args.json else show_report(report))
    return OK if report.ok else FAILED


def _report_json(report: Findings) -> str:
    """The report as `ValidationReport.model_dump_json(indent=2)` prints it (a test compares the two)."""
    return orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode()


def show_report(report: Findings) -> str:
    tokens = f"~{report.estimated_input_tokens} input tokens ({'exact' if report.tokens_exact else 'estimated'})"
    head = (
        f"{report.path}: {'valid' if report.ok else 'NOT valid'}: {report.requests} requests, {report.bytes} bytes, "
        f"deployment {_deployment(report)}, url {report.url or '-'}, {tokens}"
    )
    lines = [head]
    for issue in report.issues:
        where = f"line {issue.line}" if issue.line is not None else "file"
        lines.append(f"  {where}: {issue.code}: {issue.message}")
    listed = len(report.issues)
    total = sum(report.issue_counts.values())
    if total > listed:
        lines.append(f"  ... {total - listed} more issues not listed")
    if total:
        lines.append("  issues by code: " + ", ".join(f"{code} {n}" for code, n in sorted(report.issue_counts.items())))
    return "\n".join(lines)


def _deployment(report: Findings) -> str:
    if report.deployment is None:
        return "-"
    if report.deployment_checked:
        return report.deployment
    return f"{report.deployment} (not checked: give --deployment NAME to check that it exists)"


def run_build(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `validate` runs without them (the builder and settings bring pydantic).
    from aoai_batch.builder import build_batch_file
    from aoai_batch.fileio import free_path
    from aoai_batch.settings import known_deployments
    from server.cli_support import load_settings

    settings = load_settings()
    rules = _rules(args, known_deployments(settings)) if settings is not None else None
    if settings is None or rules is None:
        return USAGE
    try:
        requests = _read_requests(args.requests) if args.requests is not None else None
        folder = args.output_dir or Path()
        output = folder / args.output if args.output else free_path(folder / _default_name(args.source))
        result = build_batch_file(
            deployment=args.deployment,
            output_path=output,
            prompts=args.prompts,
            requests=requests,
            source_path=args.source,
            template=args.template,
            system_prompt=args.system_prompt,
            id_field=args.id_field,
            image_field=args.image_field,
            endpoint=args.endpoint,
            body=args.body,
            overwrite=args.overwrite,
            sources_home=settings.home,
            **rules.keywords(),
        )
    except InvalidInput as exc:
        report_error(exc, as_json=args.json)
        return FAILED
    print(result.model_dump_json(indent=2) if args.json else show_build(result))
    return OK


def _default_name(source: Path | None) -> str:
    return "batch.jsonl" if source is None else f"{source.stem}.batch.jsonl"


def _read_requests(path: Path) -> list[dict[str, Any]]:
    try:
        value = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read ({exc.strerror}).") from exc
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{path} is not valid JSON ({exc}).") from exc
    if not isinstance(value, list):
        raise InvalidInput(f"{path} must hold a JSON array of request objects.")
    return value


def show_build(result: BuildResult) -> str:
    tokens = f"~{result.estimated_input_tokens} input tokens ({'exact' if result.tokens_exact else 'estimated'})"
    lines = [f"wrote {result.requests} requests in {len(result.files)} file(s), {tokens}"]
    if not all(report.deployment_checked for report in result.validation):
        lines.append("  the deployment was not checked: this backend does not list its deployments")
    lines += [f"  {file.path}: {file.requests} requests, {file.bytes} bytes" for file in result.files]
    return "\n".join(lines)
