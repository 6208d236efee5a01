"""`aoai-batch-mcp config [--json]`: the resolved settings and where things are, without any secret.

The same view as the `batch://config` resource (`aoai_batch.settings.config_view`), so the two cannot drift.
Exit codes: 0 shown, 1 a setting is invalid (named, never its value).
"""

from __future__ import annotations

import argparse

from aoai_batch.quota import token_amount
from aoai_batch.settings import ConfigView, PoolView, config_view
from server.cli_args import FAILED, OK
from server.cli_support import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show the resolved settings and where state, emulator data and the workspace are (no secrets)",
        description=(
            "Show the settings as resolved from the environment: backend, endpoint host, API version, auth, "
            "limits, poll interval, and where the state database, the emulator's data and the workspace are. "
            "Keys and tokens are never shown, only whether one is configured."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the settings as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if settings is None:
        return FAILED
    view = config_view(settings)
    print(view.model_dump_json(indent=2) if args.json else show(view))
    return OK


def show(view: ConfigView) -> str:
    limits = view.limits
    rows = [
        ("backend", view.backend),
        ("endpoint host", view.endpoint_host or "-"),
        ("api version", view.api_version),
        ("auth", f"{view.auth} (signing with {'Entra ID' if view.auth_in_use == 'entra' else 'an api key'})"),
        ("api key", "configured" if view.api_key_configured else "not set"),
        ("home", view.home),
        ("state", view.state_path),
        ("emulator data", view.emulator_home or "-"),
        ("emulator deployments", ", ".join(view.emulator_deployments) if view.emulator_deployments else "-"),
        ("workspace", "\n".join(view.workspace)),
        ("max requests", str(limits.max_requests)),
        ("max bytes", str(limits.max_bytes)),
        ("file expiry", f"{limits.file_expiry_days} days"),
        ("window", limits.completion_window),
        ("poll interval", f"{view.poll_seconds:g} s"),
        ("http token", "configured" if view.http_token_configured else "not set"),
        ("sign-in", _sign_in(view)),
        ("tools", "read-only" if view.read_only else "all"),
        ("jobs", "shared by every signed-in user" if view.shared_jobs else "each signed-in user's own"),
        ("enqueued tokens", ", ".join(f"{name}={token_amount(n)}" for name, n in view.enqueued_tokens.items()) or "-"),
        ("pool", _pool(view.pool)),
    ]
    width = max(len(name) for name, _ in rows)
    indent = "\n" + " " * (width + 2)
    return "\n".join(f"{name.ljust(width)}  {value.replace(chr(10), indent)}" for name, value in rows)


def _sign_in(view: ConfigView) -> str:
    if view.sign_in is None:
        return "off"
    shown = f"issuer {view.sign_in.issuer or '(not set)'}\naudience {view.sign_in.audience or '(not set)'}"
    if view.sign_in.jwks_url:
        shown += f"\nkeys {view.sign_in.jwks_url}"
    if view.sign_in.scopes:
        shown += f"\nscopes {' '.join(view.sign_in.scopes)}"
    return shown


def _pool(pool: PoolView | None) -> str:
    if pool is None:
        return "-"
    if pool.error:
        return f"{pool.path}\n{pool.error}"
    lines = [pool.path]
    for entry in pool.deployments:
        limit = f", {token_amount(entry.enqueued_tokens)} enqueued tokens" if entry.enqueued_tokens else ""
        key = f" ({entry.api_key_env})" if entry.api_key_env else ""
        lines.append(f"{entry.name}: {entry.deployment} on {entry.endpoint_host}, {entry.auth}{key}{limit}")
    return "\n".join(lines)
