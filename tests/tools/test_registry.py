from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import orjson
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from aoai_batch.emulator import FakeClock
from aoai_batch.limits import DEFAULT_COMPLETION_WINDOW, MAX_FILE_EXPIRY_DAYS, MAX_WAIT_SECONDS, MIN_FILE_EXPIRY_DAYS
from server.state import AppState
from tests.support.clock import HOURS
from tests.support.mcp import POLL, WAIT, start_batch, structured
from tools import all_tools, build, files, jobs, results, runs
from tools.registry import ToolSpec, compact_schema, output_schemas

V1_SPECS = [*build.TOOLS, *files.TOOLS, *jobs.TOOLS, *results.TOOLS]
SPECS = [*V1_SPECS, *runs.TOOLS]
# Bytes of compact JSON. The nine tools of SPEC §3 were 19.5 KB after the schemas were compacted (34 KB before);
# issue 14 added their cost fields (2.4 KB), an icon per tool for light and dark themes (3.8 KB) and the view's
# links (0.4 KB): 26.1 KB. Every tool together averages at most this per tool (3,120 measured with the five run
# tools: a Run, returned by three of them, is the largest result), so each new tool pays its way. A Run's
# estimated_cost (0.4 KB of schema in each of the four tools returning a Run) and start_run's max_cost: 3,247.
V1_TOOLS_LIST_LIMIT = 26_500
AVERAGE_TOOL_LIMIT = 3_300


def shape(schema: dict[str, Any], node: Any = None, path: str = "") -> Iterator[tuple[str, frozenset[str]]]:
    """Every property path of `schema` with the JSON types allowed there, `$ref`s and `anyOf`s resolved."""
    node = schema if node is None else node
    ref = node.get("$ref")
    if ref is not None:
        yield from shape(schema, schema["$defs"][ref.removeprefix("#/$defs/")], path)
        return
    if "anyOf" in node:
        types: set[str] = set()
        for option in node["anyOf"]:
            for where, allowed in shape(schema, option, path):
                if where == path:
                    types |= allowed
                else:
                    yield where, allowed
        yield path, frozenset(types)
        return
    declared = node.get("type")
    if declared is None and "enum" in node:
        declared = sorted({_json_type(value) for value in node["enum"]})
    yield path, frozenset([declared] if isinstance(declared, str) else declared or [])
    for name, child in node.get("properties", {}).items():
        yield from shape(schema, child, f"{path}.{name}")
    for keyword in ("items", "additionalProperties"):
        if isinstance(node.get(keyword), dict):
            yield from shape(schema, node[keyword], f"{path}[{keyword}]")


def _json_type(value: object) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}[type(value)]


def merged_shape(schema: dict[str, Any]) -> dict[str, frozenset[str]]:
    found: dict[str, frozenset[str]] = {}
    for path, types in shape(schema):
        found[path] = found.get(path, frozenset()) | types
    return found


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.fn.__name__)
def test_compact_schemas_keep_every_property_and_type_the_sdk_would_publish(spec: ToolSpec) -> None:
    own = Tool.from_function(spec.fn, title=spec.title, annotations=spec.annotations)
    assert own.output_schema is not None
    ours = {tool.name: tool for tool in all_tools()}[own.name]

    assert merged_shape(compact_schema(output_schemas([spec.output])[spec.output], output=True)) == merged_shape(
        own.output_schema
    )
    assert ours.output_schema is not None
    assert merged_shape(ours.output_schema) == merged_shape(own.output_schema)
    assert merged_shape(ours.parameters) == merged_shape(own.parameters)
    assert ours.parameters.get("required") == own.parameters.get("required")
    for name, parameter in own.parameters["properties"].items():
        kept = ours.parameters["properties"][name]
        assert kept.get("description") == parameter.get("description"), name
        assert kept.get("default") == parameter.get("default"), name


def test_the_shape_sees_a_lost_property_or_type() -> None:
    schema = {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    assert merged_shape(schema) != merged_shape({"type": "object", "properties": {"a": {"type": "string"}}})
    assert merged_shape(schema) != merged_shape({"type": "object", "properties": {}})
    assert merged_shape(schema) == merged_shape({"type": "object", "properties": {"a": {"type": ["string", "null"]}}})


def test_a_definition_used_twice_stays_shared_and_one_used_once_is_inlined() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/Twice"},
            "b": {"anyOf": [{"$ref": "#/$defs/Twice"}, {"type": "null"}]},
            "c": {"$ref": "#/$defs/Once", "title": "C"},
        },
        "$defs": {
            "Twice": {"type": "object", "properties": {"n": {"type": "integer", "title": "N"}}},
            "Once": {"type": "string", "title": "Once"},
        },
    }

    compacted = compact_schema(schema, output=True)

    assert compacted["properties"]["c"] == {"type": "string"}
    assert compacted["$defs"] == {"Twice": {"type": "object", "properties": {"n": {"type": "integer"}}}}
    assert compacted["properties"]["b"] == {"anyOf": [{"$ref": "#/$defs/Twice"}, {"type": "null"}]}


def test_a_property_named_like_a_keyword_is_kept() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "format": {"type": "string"}}}
    assert compact_schema(schema, output=True)["properties"] == schema["properties"]


def test_every_tool_has_its_model_and_schema() -> None:
    for tool in all_tools():
        assert tool.fn_metadata.output_model is not None, tool.name
        assert tool.output_schema is not None, tool.name
        assert tool.output_schema["type"] == "object", tool.name


def test_a_tool_that_returns_no_model_is_refused() -> None:
    def bad() -> str:
        """Nothing structured."""
        return ""

    with pytest.raises(TypeError):
        _ = ToolSpec(bad, title="Bad", annotations=ToolAnnotations()).output


async def test_tools_list_stays_small(app: MCPServer[AppState]) -> None:
    async with Client(app, mode="legacy") as client:
        listed = await client.list_tools()
    listing = listed.model_dump(mode="json", by_alias=True, exclude_none=True)
    v1_names = {spec.fn.__name__ for spec in V1_SPECS}
    v1 = {**listing, "tools": [tool for tool in listing["tools"] if tool["name"] in v1_names]}

    assert len(v1["tools"]) == len(V1_SPECS)
    assert len(orjson.dumps(v1)) <= V1_TOOLS_LIST_LIMIT
    assert len(orjson.dumps(listing)) <= AVERAGE_TOOL_LIMIT * len(listing["tools"])


async def test_every_output_schema_validates_a_real_result(
    app: MCPServer[AppState], batch_file: Path, fake_clock: FakeClock
) -> None:
    async with Client(app, mode="legacy") as client:
        schemas = {tool.name: tool.output_schema for tool in (await client.list_tools()).tools}
        created = await start_batch(client, batch_file)
        to_cancel = await start_batch(client, batch_file)
        calls: dict[str, dict[str, Any]] = {
            "build_batch_file": {"deployment": "gpt-4o-mini", "prompts": ["Hi"], "output_path": "built.jsonl"},
            "validate_batch_file": {"path": batch_file.name},
            "upload_file": {"path": batch_file.name},
            "create_batch": {"input_file_id": created["input_file_id"]},
            "get_batch": {"batch_id": created["id"]},
            "list_batches": {},
            "list_files": {},
            "cancel_batch": {"batch_id": to_cancel["id"]},
        }
        outputs = {name: structured(await client.call_tool(name, arguments)) for name, arguments in calls.items()}
        run = {"deployments": ["gpt-4o-mini"], "prompts": ["Hi", "Hello"]}
        outputs["start_run"] = started = structured(await client.call_tool("start_run", run))
        outputs["cancel_run"] = structured(await client.call_tool("cancel_run", {"run_id": started["id"]}))
        outputs["list_runs"] = structured(await client.call_tool("list_runs", {}))
        fake_clock.advance(2 * HOURS)
        outputs["fetch_results"] = structured(await client.call_tool("fetch_results", {"batch_id": created["id"]}))
        outputs["get_batch_completed"] = structured(await client.call_tool("get_batch", {"batch_id": created["id"]}))
        with anyio.fail_after(WAIT):
            while not (ended := structured(await client.call_tool("get_run", {"run_id": started["id"]})))["terminal"]:
                fake_clock.advance(HOURS)
                await anyio.sleep(POLL)
        outputs["get_run"] = ended
        fetched = {"run_id": started["id"], "output_dir": "run-results"}
        outputs["fetch_run_results"] = structured(await client.call_tool("fetch_run_results", fetched))
    schemas["get_batch_completed"] = schemas["get_batch"]
    assert set(outputs) - {"get_batch_completed"} == {tool.name for tool in all_tools()}
    for name, output in outputs.items():
        schema = schemas[name]
        assert schema is not None
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema).validate(output)


def test_the_tools_bounds_are_the_cores() -> None:
    parameters = {tool.name: tool.parameters["properties"] for tool in all_tools()}
    wait = parameters["get_batch"]["wait_seconds"]
    expiry = parameters["upload_file"]["expires_after_days"]

    assert (wait["minimum"], wait["maximum"]) == (0, MAX_WAIT_SECONDS)
    assert (expiry["minimum"], expiry["maximum"]) == (MIN_FILE_EXPIRY_DAYS, MAX_FILE_EXPIRY_DAYS)
    assert parameters["create_batch"]["completion_window"]["default"] == DEFAULT_COMPLETION_WINDOW
