"""Turns the tool functions into SDK `Tool`s, with every output schema generated in one pass.

The SDK derives each tool's output schema on its own: `Batch` alone would be generated five times (three
tools return it, `BatchPage` nests it). Generating them together shares the definitions and takes about a
third of the time, which is most of what this server adds to start-up (bench/startup.py). The schemas are
the SDK's own (`tests/tools/test_registry.py` compares them), handed over through `FuncMetadata`'s
documented live fields.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import StrictJsonSchema
from mcp_types import ToolAnnotations
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

DEFS_PREFIX = "#/$defs/"


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


def build_tools(specs: Iterable[ToolSpec]) -> list[Tool]:
    specs = list(specs)
    schemas = output_schemas(spec.output for spec in specs)
    tools = []
    for spec in specs:
        tool = Tool.from_function(
            spec.fn,
            title=spec.title,
            description=spec.description,
            annotations=spec.annotations,
            structured_output=False,  # the output model and schema are set below, from the shared pass
        )
        tool.fn_metadata.output_model = spec.output
        tool.fn_metadata.output_schema = schemas[spec.output]
        tools.append(tool)
    return tools
