from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from aoai_batch.results.source_rows import link_path, load_link
from aoai_batch.settings import Settings
from server.state import AppState
from tests.support.mcp import MODES, error_kind, structured
from tests.support.paths import names_in

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8ffff3f0005fe02fe0dd2c5b20000000049454e44ae426082"
)


def read_lines(path: object) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in Path(str(path)).read_bytes().splitlines()]


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("mode", MODES)
async def test_prompts_become_a_checked_batch_file_in_the_workspace(
    app: MCPServer[AppState], workspace: Path, mode: str
) -> None:
    async with Client(app, mode=mode) as client:
        built = structured(
            await client.call_tool(
                "build_batch_file",
                {"deployment": "gpt-4o-mini", "prompts": ["One?", "Two?"], "body": {"max_tokens": 10}},
            )
        )
    [written] = built["files"]
    path = Path(written["path"])
    assert path.parent == workspace
    assert built["requests"] == 2
    assert built["split"] is False
    assert [report["ok"] for report in built["validation"]] == [True]
    assert [line["body"]["max_tokens"] for line in read_lines(path)] == [10, 10]


async def test_rows_of_a_csv_fill_the_template(app: MCPServer[AppState], workspace: Path, settings: Settings) -> None:
    source = workspace / "data" / "tickets.csv"
    source.parent.mkdir()
    source.write_text("id,text\nt1,printer on fire\nt2,password reset\n", encoding="utf-8")
    async with Client(app, mode="legacy") as client:
        built = structured(
            await client.call_tool(
                "build_batch_file",
                {
                    "deployment": "gpt-4o-mini",
                    "source_path": "data/tickets.csv",
                    "template": "Classify: {text}",
                    "id_field": "id",
                    "output_path": "out/tickets.jsonl",
                },
            )
        )
    path = workspace / "out" / "tickets.jsonl"
    lines = read_lines(path)
    assert built["files"][0]["path"] == str(path)
    assert [line["custom_id"] for line in lines] == ["t1", "t2"]
    assert lines[0]["body"]["messages"][-1]["content"] == "Classify: printer on fire"
    link = load_link(link_path(settings.home, path))  # kept for fetch_results to bring the rows' columns back
    assert link is not None
    assert (link.path, link.rows) == (str(source.resolve()), 2)


async def test_local_images_are_read_from_inside_the_workspace_only(
    app: MCPServer[AppState], workspace: Path, tmp_path: Path
) -> None:
    (workspace / "cat.png").write_bytes(PNG)
    (tmp_path / "secret.png").write_bytes(PNG)
    rows = workspace / "rows.jsonl"
    rows.write_bytes(b'{"id": "a", "img": "cat.png"}\n')
    outside_rows = workspace / "outside-rows.jsonl"
    outside_rows.write_bytes(orjson.dumps({"id": "b", "img": str(tmp_path / "secret.png")}) + b"\n")
    arguments = {"deployment": "gpt-4o-mini", "template": "Describe", "id_field": "id", "image_field": "img"}
    async with Client(app, mode="legacy") as client:
        built = structured(await client.call_tool("build_batch_file", {**arguments, "source_path": "rows.jsonl"}))
        refused = await client.call_tool(
            "build_batch_file", {**arguments, "source_path": "outside-rows.jsonl", "output_path": "b.jsonl"}
        )
    [line] = read_lines(built["files"][0]["path"])
    assert "data:image/png;base64," in orjson.dumps(line).decode()
    assert error_kind(refused) == "invalid_input"
    assert not (workspace / "b.jsonl").exists()


@pytest.mark.parametrize(
    ("arguments", "kind"),
    [
        ({"prompts": ["a"], "output_path": "../escape.jsonl"}, "invalid_input"),
        ({"prompts": ["a"], "output_path": "/tmp/elsewhere.jsonl"}, "invalid_input"),
        ({"prompts": ["a"], "requests": [{"prompt": "b"}]}, "invalid_input"),
        ({}, "invalid_input"),
        ({"source_path": "missing.csv"}, "invalid_input"),
        ({"prompts": ["a"], "output_path": "taken.jsonl"}, "conflict"),
    ],
)
async def test_bad_build_requests_are_tool_errors_and_write_nothing(
    app: MCPServer[AppState], workspace: Path, arguments: dict[str, object], kind: str
) -> None:
    (workspace / "taken.jsonl").write_text("keep me\n")
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool("build_batch_file", {"deployment": "gpt-4o-mini", **arguments})
    assert error_kind(result) == kind
    assert names_in(workspace) == ["taken.jsonl"]
    assert read_text(workspace / "taken.jsonl") == "keep me\n"


async def test_overwrite_replaces_an_existing_file_when_asked(app: MCPServer[AppState], workspace: Path) -> None:
    (workspace / "taken.jsonl").write_text("old\n")
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool(
            "build_batch_file",
            {"deployment": "gpt-4o-mini", "prompts": ["a"], "output_path": "taken.jsonl", "overwrite": True},
        )
    assert structured(result)["requests"] == 1
    assert read_text(workspace / "taken.jsonl") != "old\n"


async def test_a_deployment_the_backend_does_not_have_is_refused_naming_the_ones_it_has(
    app: MCPServer[AppState], workspace: Path
) -> None:
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool("build_batch_file", {"deployment": "gpt-5", "prompts": ["a"]})
    assert error_kind(result) == "invalid_input"
    assert result.content[0].type == "text"
    assert "gpt-4o-mini" in result.content[0].text
    assert names_in(workspace) == []


async def test_doubled_braces_in_a_template_are_literal_braces(app: MCPServer[AppState], workspace: Path) -> None:
    async with Client(app, mode="legacy") as client:
        built = structured(
            await client.call_tool(
                "build_batch_file",
                {"deployment": "gpt-4o-mini", "prompts": ["Paris"], "template": 'Answer as {{"city": "{prompt}"}}'},
            )
        )
    [line] = read_lines(built["files"][0]["path"])
    assert line["body"]["messages"] == [{"role": "user", "content": 'Answer as {"city": "Paris"}'}]


async def test_a_json_example_with_single_braces_is_refused_saying_to_double_them(
    app: MCPServer[AppState], workspace: Path
) -> None:
    async with Client(app, mode="legacy") as client:
        result = await client.call_tool(
            "build_batch_file",
            {"deployment": "gpt-4o-mini", "prompts": ["Paris"], "template": 'Answer as {"city": "x"} for {prompt}'},
        )
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert error_kind(result) == "invalid_input"
    assert result.content[0].type == "text"
    assert '{{"city": "x"}}' in result.content[0].text
    assert names_in(workspace) == []
    assert "{{" in listed["build_batch_file"].input_schema["properties"]["template"]["description"]
