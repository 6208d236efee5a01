"""Turns the tool functions into SDK `Tool`s, with every output schema generated in one pass.

The SDK derives each tool's output schema on its own: `Batch` alone would be generated five times (three
tools return it, `BatchPage` nests it). Generating them together shares the definitions and takes about a
third of the time, which is most of what this server adds to start-up (bench/startup.py). The schemas are
handed over through `FuncMetadata`'s documented live fields.

Every schema, input and output, is then compacted: a client reads `tools/list` at every session start
(34 KB before, under 20 KB now), and pydantic's schemas are mostly noise to it: a title per field that
repeats its name, `default: null`, an `anyOf` for every optional field, and in outputs the annotations
below. Each stays a self-contained JSON Schema with every property and type (`tests/tools/test_registry.py`
checks that, the size, and that real results still validate); a definition used once is inlined, one used
more often stays in that schema's `$defs`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import StrictJsonSchema
from mcp_types import ToolAnnotations
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from aoai_batch.errors import InvalidInput
from tools.deps import error_result
from tools.icons import tool_icons

DEFS_PREFIX = "#/$defs/"
# pydantic's titles repeat the property names; `$defs` is rebuilt with only the definitions still used.
DROPPED = frozenset({"title", "$defs"})
# An output schema is there to check a result's shape, and a result carries every field. So its defaults
# say nothing, nor does `required` (pydantic lists the fields without a Python default, a fraction of
# what a result always has); what the fields mean is told once, in the tool's description and the
# README, not in each of the four tools that return a Batch; `format` is an annotation no validator
# checks by default (times are ISO 8601 strings, SPEC §3).
DROPPED_FROM_OUTPUT = frozenset({"default", "description", "format", "required"})


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Any]
    title: str
    annotations: ToolAnnotations

    @property
    def output(self) -> type[BaseModel]:
        returns = inspect.signature(self.fn, eval_str=True).return_annotation
        if not (inspect.isclass(returns) and issubclass(returns, BaseModel)):
            raise TypeError(f"tool {self.fn.__name__} must return a pydantic model")
        return returns

    @property
    def description(self) -> str:
        """The docstring on one line: it is what the model reads."""
        return " ".join(inspect.cleandoc(self.fn.__doc__ or "").split())


def _refs(node: object) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
            yield ref.removeprefix(DEFS_PREFIX)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def output_schemas(models: Iterable[type[BaseModel]]) -> dict[type[BaseModel], dict[str, Any]]:
    """Each model's standalone JSON schema (as the SDK publishes it), generated in one shared pass."""
    unique = list(dict.fromkeys(models))
    key_map, combined = models_json_schema([(m, "validation") for m in unique], schema_generator=StrictJsonSchema)
    definitions: dict[str, Any] = combined.get("$defs", {})
    schemas: dict[type[BaseModel], dict[str, Any]] = {}
    for model in unique:
        name = key_map[(model, "validation")]["$ref"].removeprefix(DEFS_PREFIX)
        schema = dict(definitions[name])
        needed: dict[str, Any] = {}
        pending = list(_refs(schema))
        while pending:
            ref = pending.pop()
            if ref not in needed:
                needed[ref] = definitions[ref]
                pending.extend(_refs(definitions[ref]))
        if needed:
            schema["$defs"] = {key: needed[key] for key in sorted(needed)}
        schemas[model] = schema
    return schemas


def compact_schema(schema: dict[str, Any], *, output: bool) -> dict[str, Any]:
    """`schema` without the noise (see DROPPED and DROPPED_FROM_OUTPUT), with every property and type.

    An input schema keeps its descriptions, `required` and its defaults other than null: the model reads
    them, and it accepts exactly what it accepted.
    """
    definitions: dict[str, Any] = schema.get("$defs", {})
    uses: dict[str, int] = {}
    for ref in _refs({key: value for key, value in schema.items() if key != "$defs"}):
        uses[ref] = uses.get(ref, 0) + 1
    for ref in _refs(list(definitions.values())):
        uses[ref] = uses.get(ref, 0) + 1
    inlined = {name for name, count in uses.items() if count == 1 and name not in set(_refs(definitions[name]))}
    compacted: dict[str, Any] = _compact(schema, definitions, inlined, output)
    kept = {name: _compact(definitions[name], definitions, inlined, output) for name in sorted(uses)}
    compacted.pop("$defs", None)
    kept = {name: node for name, node in kept.items() if name not in inlined}
    if kept:
        compacted["$defs"] = kept
    return compacted


def _compact(node: Any, definitions: dict[str, Any], inlined: set[str], output: bool) -> Any:
    if isinstance(node, list):
        return [_compact(item, definitions, inlined, output) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.removeprefix(DEFS_PREFIX) in inlined:
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        node = {**definitions[ref.removeprefix(DEFS_PREFIX)], **siblings}
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in DROPPED or key in (DROPPED_FROM_OUTPUT if output else ()):
            continue
        if (key == "default" and value is None) or (key == "additionalProperties" and value is True):
            continue
        if key == "properties":  # names, not keywords: a property may be called `format` or `title`
            result[key] = {name: _compact(item, definitions, inlined, output) for name, item in value.items()}
        else:
            result[key] = _compact(value, definitions, inlined, output)
    return _nullable_as_type_list(result)


def _nullable_as_type_list(node: dict[str, Any]) -> dict[str, Any]:
    """`{"anyOf": [{"type": "string", ...}, {"type": "null"}]}` as `{"type": ["string", "null"], ...}`."""
    options = node.get("anyOf")
    if not (isinstance(options, list) and len(options) == 2 and options[1] == {"type": "null"}):
        return node
    kept = options[0]
    if not (isinstance(kept, dict) and isinstance(kept.get("type"), str) and not set(kept) & set(node)):
        return node
    merged = {key: value for key, value in node.items() if key != "anyOf"}
    merged.update(kept, type=[kept["type"], "null"])
    if "enum" in kept:
        merged["enum"] = [*kept["enum"], None]
    return merged


class KindedTool(Tool):
    """A tool whose anticipated errors come back with their kind (`tools.deps.error_result`).

    `Tool.run` raises every failure as a `ToolError` whose `__cause__` is what was raised (the SDK's
    documented contract), so the core's error, or pydantic's for arguments that do not fit, is found
    there. A crash (`UnexpectedToolError`) is left to the SDK, which logs its traceback.
    """

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        try:
            return await super().run(arguments, context, convert_result=convert_result)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            result = error_result(self.name, exc)
            if result is None:
                raise
            return result


def build_tools(specs: Iterable[ToolSpec]) -> list[Tool]:
    specs = list(specs)
    schemas = output_schemas(spec.output for spec in specs)
    tools = []
    for spec in specs:
        tool = KindedTool.from_function(
            spec.fn,
            title=spec.title,
            description=spec.description,
            annotations=spec.annotations,
            icons=tool_icons(spec.fn.__name__),
            structured_output=False,  # the output model and schema are set below, from the shared pass
        )
        tool.fn_metadata.output_model = spec.output
        tool.fn_metadata.output_schema = compact_schema(schemas[spec.output], output=True)
        tool.parameters = compact_schema(tool.parameters, output=False)
        tools.append(tool)
    return tools


@dataclass(frozen=True)
class ToolSurface:
    """Which registered tools a server offers: `--read-only` keeps those that change nothing, `--tools` names them.

    It judges a tool by what it declares (its name and `readOnlyHint`), never by a list of its own, so a tool
    added anywhere is narrowed like the rest. A tool that does not say it is read-only is taken to change things
    (MCP's default for `readOnlyHint`).
    """

    read_only: bool = False
    allowed: frozenset[str] | None = None

    @property
    def narrows(self) -> bool:
        return self.read_only or self.allowed is not None

    def keeps(self, name: str, annotations: ToolAnnotations | None) -> bool:
        if self.allowed is not None and name not in self.allowed:
            return False
        return not self.read_only or is_read_only(annotations)

    def check(self, tools: dict[str, ToolAnnotations | None]) -> None:
        """Raises InvalidInput when `--tools` names a tool that is not registered, or one `--read-only` drops."""
        if self.allowed is None:
            return
        unknown = sorted(self.allowed - set(tools))
        if unknown:
            raise InvalidInput(f"Unknown tools: {', '.join(unknown)}. The tools are: {', '.join(sorted(tools))}.")
        changing = sorted(name for name in self.allowed if self.read_only and not is_read_only(tools[name]))
        if changing:
            raise InvalidInput(
                f"With read-only serving, these tools cannot be offered, as they change things: {', '.join(changing)}."
            )


def is_read_only(annotations: ToolAnnotations | None) -> bool:
    return annotations is not None and annotations.read_only_hint is True
