"""Size of the `tools/list` answer, as a real MCP client receives it, against the SDK's own schemas.

Lists the tools through an in-memory `Client`, prints the compact JSON size, the share that is output
schemas, and the ratio to the same tools with the schemas the SDK would generate by itself (built in the
same run from the same functions), and the share that is the tools' icons. Targets: the nine tools of SPEC §3
<= 26.5 KB (20 KB before issue 14's cost fields, icons and view links); every tool together (the runs' five too)
<= 3,300 bytes per tool on average (tests/tools/test_registry.py).

    python bench/tools_list.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
import orjson
from mcp import Client
from mcp.server.mcpserver.tools import Tool

# The checkout this script is in (its tests package too), whatever is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.app import build_server
from tests.support.mcp import make_settings
from tools import build, files, jobs, results, runs

V1_TOOLS = (*build.TOOLS, *files.TOOLS, *jobs.TOOLS, *results.TOOLS)
V1_TARGET_BYTES = 26_500
AVERAGE_TARGET_BYTES = 3_300


def size(value: Any) -> int:
    return len(orjson.dumps(value))


async def listed_tools(home: Path) -> dict[str, Any]:
    async with Client(build_server(make_settings(home)), mode="legacy") as client:
        answer = await client.list_tools()
    listing: dict[str, Any] = answer.model_dump(mode="json", by_alias=True, exclude_none=True)
    return listing


def with_sdk_schemas(listing: dict[str, Any]) -> dict[str, Any]:
    """The same listing with each tool's schemas as `Tool.from_function` generates them alone."""
    own = {}
    for spec in (*V1_TOOLS, *runs.TOOLS):
        tool = Tool.from_function(spec.fn, title=spec.title, annotations=spec.annotations)
        own[tool.name] = tool
    tools = []
    for entry in listing["tools"]:
        tool = own.get(entry["name"])
        if tool is not None:
            entry = {**entry, "inputSchema": tool.parameters, "outputSchema": tool.output_schema}
        tools.append(entry)
    return {**listing, "tools": tools}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="aoai-tools-list-") as tmp:
        listing = anyio.run(listed_tools, Path(tmp))
    baseline = with_sdk_schemas(listing)
    ours, theirs = size(listing), size(baseline)
    outputs = sum(size(tool.get("outputSchema")) for tool in listing["tools"])
    icons = sum(size(tool.get("icons")) for tool in listing["tools"])
    print(f"tools/list ({len(listing['tools'])} tools): {ours} bytes, output schemas {outputs / ours:.0%} of it")
    print(f"icons: {icons} bytes ({icons / ours:.0%})")
    print(f"with the SDK's own schemas: {theirs} bytes")
    print(f"ratio ours/SDK: {ours / theirs:.2f}")
    v1_names = {spec.fn.__name__ for spec in V1_TOOLS}
    v1 = size({**listing, "tools": [tool for tool in listing["tools"] if tool["name"] in v1_names]})
    share = v1 / V1_TARGET_BYTES
    print(f"the {len(v1_names)} tools of SPEC §3: {v1} bytes (target <= {V1_TARGET_BYTES}: {share:.2f}x)")
    average = ours / len(listing["tools"])
    print(
        f"all {len(listing['tools'])} tools: {average:.0f} bytes per tool "
        f"(target <= {AVERAGE_TARGET_BYTES}: {average / AVERAGE_TARGET_BYTES:.2f}x)"
    )
    for tool in listing["tools"]:
        print(f"  {tool['name']:22s} {size(tool):6d} bytes (output schema {size(tool.get('outputSchema')):5d})")


if __name__ == "__main__":
    main()
