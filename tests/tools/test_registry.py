from __future__ import annotations

import pytest
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from tools import all_tools, build, files, jobs, results
from tools.registry import ToolSpec, output_schemas

SPECS = [*build.TOOLS, *files.TOOLS, *jobs.TOOLS, *results.TOOLS]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.fn.__name__)
def test_shared_pass_schemas_are_the_ones_the_sdk_would_publish(spec: ToolSpec) -> None:
    own = Tool.from_function(spec.fn, title=spec.title, annotations=spec.annotations)
    assert output_schemas([spec.output])[spec.output] == own.output_schema
    assert output_schemas(s.output for s in SPECS)[spec.output] == own.output_schema


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
