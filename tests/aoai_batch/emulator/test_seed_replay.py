"""Azure's own batch documentation, replayed against the emulator: every Python cell of the Python pages and
every curl call of the REST page, unchanged but for endpoint and key (and the listed substitutions, each of
which must apply), over a real uvicorn on loopback. Each step must succeed, and what it prints or answers
must have the shape of the sample the page shows after it.

The pages with code: 001 (the Python how-to, markdown: its cells are fenced) and 003 (the published page:
Python and REST, scraped as text, so its code lost its indentation: `SCRAPED_CELLS` gives it back, line by
line). The pages' `!pip install` lines are shell, not Python, and are not run. 000 (Studio) and 002 (the
overview) have input files and samples but no code: their inputs run in
`test_every_input_sample_of_the_seeds_runs_to_completion`, their batch samples in `test_batch_shape.py`.
"""

from __future__ import annotations

import functools
import re
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import orjson
import pytest

from aoai_batch.emulator import FakeClock
from tests.support.clock import DONE
from tests.support.http_server import EmulatorServer
from tests.support.seed_replay import (
    EmulatorCredential,
    Notebook,
    Substitution,
    parse_curl,
    printed_json,
    reindented,
    send,
    substituted,
    substituted_cells,
)
from tests.support.seeds import curl_commands, json_objects, missing_keys, python_cells, seed_text, seed_texts

DEPLOYMENT = "gpt-4o-mini"
PLACEHOLDER_MODEL = "REPLACE-WITH-MODEL-DEPLOYMENT-NAME"
CELL_TIMEOUT = 60  # real seconds: a cell (even one that polls) ends within this, or the replay fails
POLL_SECONDS = 60  # "we recommend waiting at least 60 seconds in between each status call" (the pages)
STATUS_LINE = re.compile(r"Status: (\w+)")
JSON_RIGHT_AFTER = re.compile(r"```\s*```json\n")
NEW_BATCH = 'client.batches.create(input_file_id=file_id, endpoint="/chat/completions", completion_window="24h").id'

# Changes to the Python cells: none touches what the cell does against the service.
PYTHON_SUBSTITUTIONS = {
    "001": [
        Substitution("time.sleep(", "advance_clock(", "polling sleeps move the emulator's fake clock", count=2),
        Substitution("batch_reponse", "batch_response", "a typo in the page (a NameError on Azure too)"),
        Substitution('"batch_abc123"', NEW_BATCH, "'set to your batch_id': a batch that can still be cancelled"),
    ],
    "003": [
        Substitution("time.sleep(", "advance_clock(", "polling sleeps move the emulator's fake clock"),
        Substitution("DefaultAzureCredential()", "EmulatorCredential()", "Entra ID offline: the key as token", 2),
        Substitution('"https://{YOUR_RESOURCE_NAME}.openai.azure.com/"', "ENDPOINT", "the endpoint: the emulator"),
        Substitution('"batch_abc123"', NEW_BATCH, "'set to your batch_id': a batch that can still be cancelled"),
    ],
}

CANCEL_LINE = 'client.batches.cancel("batch_abc123") # set to your batch_id for the job you want to cancel'
# Page 003's cells: (first line, last line, the indentation level of each line, or None when the cell
# needs none: lines inside brackets may start anywhere). The levels are those of the markdown source.
SCRAPED_CELLS: list[tuple[str, str, list[int] | None]] = [
    ("import os", "file_id = file.id", None),
    ("# Submit a batch job with the file", "print(batch_response.model_dump_json(indent=2))", None),
    ("import time", 'print(f"Error code {error.code} Message {error.message}")', [0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 2]),
    ("print(batch_response.model_dump_json(indent=2))", "print(batch_response.model_dump_json(indent=2))", None),
    ("import json", "print(formatted_json)", [0, 0, 0, 1, 0, 1, 1, 1, 2, 2, 2]),
    (CANCEL_LINE, CANCEL_LINE, None),
    ("client.batches.list()", "client.batches.list()", None),
    ("all_jobs = []", "print(all_jobs)", [0, 0, 0, 1, 0, 1, 1, 0]),
    (
        "import requests",
        "print(response.text)",
        [0] * 15 + [1, 1, 2, 2, 1, 2, 2, 1, 2, 1, 1, 1, 2, 1] + [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1],
    ),
]
PYTHON_LINE = re.compile(r"^(import \w|from \w+ import |print\(|client\.|(for \w+ in|while|if) .*:$|def \w+\()")


@pytest.fixture
def fake_clock(request: pytest.FixtureRequest) -> FakeClock:
    """The emulator's clock, from now unless a test says when (a page's filter may use the wall clock)."""
    return FakeClock(getattr(request, "param", time.time()))


def standard_input(text: str, folder: Path) -> Path:
    """`test.jsonl`: 'the contents from the standard input code block above', with the deployment's name."""
    lines = [line for line in text.splitlines() if line.startswith('{"custom_id": "task-')][:3]
    path = folder / "test.jsonl"
    path.write_text("".join(line.replace(PLACEHOLDER_MODEL, DEPLOYMENT) + "\n" for line in lines), encoding="utf-8")
    return path


def scraped_cells(text: str) -> list[tuple[int, int, str]]:
    """(first line, end line, code) of each of page 003's cells, found in order and given back indentation."""
    lines = text.splitlines()
    cells: list[tuple[int, int, str]] = []
    position = 0
    for first, last, levels in SCRAPED_CELLS:
        start = lines.index(first, position)
        end = lines.index(last, start) + 1
        cells.append((start, end, reindented(lines[start:end], levels)))
        position = end
    return cells


def test_every_python_line_of_the_scraped_page_is_in_a_replayed_cell() -> None:
    lines = seed_text("003").splitlines()
    covered = {i for start, end, _ in scraped_cells(seed_text("003")) for i in range(start, end)}
    python = {i for i, line in enumerate(lines) if PYTHON_LINE.match(line)}
    assert sorted(python - covered) == []


def check_against_sample(printed: str, region: str, name: str) -> None:
    """What a step printed or answered has the shape of the page's sample output after it, if it shows one:
    its JSON (the sample's keys, recursively), or the status its polling loop ended on."""
    if "Output:" in region:
        sample_text = region[region.index("Output:") :]
    elif JSON_RIGHT_AFTER.match(region):  # a markdown cell followed at once by a ```json block
        sample_text = region
    else:
        return
    samples = [value for _, _, value in json_objects(sample_text)]
    if samples:
        actual = printed_json(printed)
        assert actual, f"{name} printed no JSON; the page shows {samples[0]}"
        assert missing_keys(samples[0], actual[0]) == [], name
    sample_statuses = STATUS_LINE.findall(sample_text)
    if sample_statuses:
        assert STATUS_LINE.findall(printed)[-1:] == sample_statuses[-1:], name


async def run_notebook(
    page: str, cells: list[tuple[int, int, str]], lines: list[str], server: EmulatorServer
) -> dict[str, Any]:
    """Run a page's cells in order in one namespace, each bounded in time, checking each against its sample."""
    notebook = Notebook(server.clock.advance)
    notebook.namespace["EmulatorCredential"] = functools.partial(EmulatorCredential, server.key)
    notebook.namespace["ENDPOINT"] = server.url + "/"
    codes = substituted_cells([code for _, _, code in cells], PYTHON_SUBSTITUTIONS[page])
    try:
        for index, ((start, end, _), code) in enumerate(zip(cells, codes, strict=True)):
            name = f"<seed {page}, cell {index + 1} (line {start + 1})>"
            with anyio.fail_after(CELL_TIMEOUT):
                printed = await anyio.to_thread.run_sync(notebook.run, code, name, abandon_on_cancel=True)
            following = cells[index + 1][0] if index + 1 < len(cells) else len(lines)
            check_against_sample(printed, "\n".join(lines[end:following]), name)
    finally:
        notebook.close()
    assert notebook.sleeps > 0
    return notebook.namespace


def fenced_cells(text: str) -> list[tuple[int, int, str]]:
    """(first line, end line, code) of a markdown page's ```python cells."""
    cells: list[tuple[int, int, str]] = []
    for offset, code in python_cells(text):
        start = text.count("\n", 0, offset)
        cells.append((start, start + code.count("\n"), code))
    return cells


async def test_the_python_how_to_runs_cell_by_cell_on_the_emulator(
    emulator_server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = seed_text("001")
    standard_input(text, tmp_path)
    monkeypatch.chdir(tmp_path)  # the cells open "test.jsonl"
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", emulator_server.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", emulator_server.key)
    cells = fenced_cells(text)
    namespace = await run_notebook("001", cells, text.splitlines(), emulator_server)
    assert len(cells) == 8
    assert namespace["status"] == "completed"
    assert [orjson.loads(line)["custom_id"] for line in namespace["response"].text.splitlines()] == [
        "task-0",
        "task-1",
        "task-2",
    ]


async def test_the_published_pages_python_runs_cell_by_cell_on_the_emulator(
    emulator_server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = seed_text("003")
    standard_input(text, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", emulator_server.url)
    cells = scraped_cells(text)
    namespace = await run_notebook("003", cells, text.splitlines(), emulator_server)
    assert namespace["status"] == "completed"
    assert namespace["response"].status_code == 200
    listed = [batch["id"] for batch in namespace["json_data"]["data"]]
    assert namespace["batch_id"] in listed  # created within 'the past 8 hours', found by $filter
    assert [job.id for job in namespace["all_jobs"]] == [b["id"] for b in namespace["json_data"]["data"]][::-1]


# The REST page (003's curl calls), in its order.
REST_URL = "https://YOUR_RESOURCE_NAME.openai.azure.com"
START_OF_THE_PAGES_FILTER = 1_728_800_000.0  # inside the created_at window of the page's $filter example


@pytest.mark.parametrize("fake_clock", [START_OF_THE_PAGES_FILTER], indirect=True)
async def test_the_rest_pages_curl_calls_run_in_order_on_the_emulator(
    emulator_server: EmulatorServer, tmp_path: Path
) -> None:
    with anyio.fail_after(CELL_TIMEOUT):
        await anyio.to_thread.run_sync(replay_rest_page, emulator_server, tmp_path, abandon_on_cancel=True)


def replay_rest_page(emulator_server: EmulatorServer, tmp_path: Path) -> None:
    """Run the page's curl calls in order (as a shell would, one after the other), checking each."""
    text = seed_text("003")
    path = standard_input(text, tmp_path)
    commands = curl_commands(text)
    ids: dict[str, str] = {}
    answers: list[httpx2.Response] = []
    with httpx2.Client(timeout=30, headers={"api-key": emulator_server.key}) as http:
        for index, (end, command) in enumerate(commands):
            call = parse_curl(substituted(command, rest_substitutions(command, emulator_server, path, ids)))
            response = send(http, call)
            assert response.is_success, f"{command}: {response.status_code} {response.text}"
            answers.append(response)
            if call.output:
                (tmp_path / call.output).write_bytes(response.content)
            following = commands[index + 1][0] if index + 1 < len(commands) else len(text)
            check_against_sample(response.text, text[end:following], command)
            body = response.json() if response.headers["content-type"] == "application/json" else {}
            if body.get("object") in ("file", "batch"):
                ids.setdefault(f"{body['object']}_id", body["id"])
            if call.method == "GET" and call.url.startswith(f"{emulator_server.url}/openai/batches/"):
                wait_for_the_batch(http, call.url, emulator_server.clock, ids)
    assert len(commands) == 8
    output = (tmp_path / "batch_output.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["custom_id"] for line in output] == ["task-0", "task-1", "task-2"]
    assert [b["id"] for b in answers[-1].json()["data"]] == [ids["batch_id"]]  # 'Completed', in the window


def rest_substitutions(command: str, server: EmulatorServer, path: Path, ids: dict[str, str]) -> list[Substitution]:
    """The changes a curl call needs before it runs: endpoint, key, the ids the page leaves to the reader."""
    subs = [Substitution("$AZURE_OPENAI_API_KEY", server.key, "the key (the shell would expand it)")]
    if REST_URL in command:
        subs.append(Substitution(REST_URL, server.url, "the endpoint: the emulator"))
    else:  # the page's filter example has no scheme and no /openai/ in its path (curl would fail on Azure too)
        subs.append(Substitution("YOUR_RESOURCE_NAME.openai.azure.com/batches", server.url + "/openai/batches", "url"))
    if "C:\\\\batch\\\\test.jsonl" in command:
        subs.append(Substitution("C:\\\\batch\\\\test.jsonl", str(path), "'adjust this file path' (the page)"))
    for placeholder, key in [("{file-id}", "file_id"), ("file-abc123", "file_id"), ("{output_file_id}", "output")]:
        if placeholder in command:
            subs.append(Substitution(placeholder, ids[key], f"the {key} of an earlier step"))
    if "/cancel" in command:
        subs.append(Substitution("{batch_id}", ids["cancellable"], "'your batch_id': one that can still be cancelled"))
        subs.append(Substitution("curl ", "curl -X POST ", "the page's cancel lacks -X POST; Azure cancels by POST"))
    elif "{batch_id}" in command:
        subs.append(Substitution("{batch_id}", ids["batch_id"], "the batch_id of an earlier step"))
    return subs


def wait_for_the_batch(http: httpx2.Client, url: str, clock: FakeClock, ids: dict[str, str]) -> None:
    """Poll the batch as the page says (every 60 s, on the fake clock) until it completes; then make the
    batch the page's cancel call needs (one still validating)."""
    batch = http.get(url).json()
    for _ in range(1_000):
        if batch["status"] == "completed":
            break
        clock.advance(POLL_SECONDS)
        batch = http.get(url).json()
    assert batch["status"] == "completed"
    ids["output"] = batch["output_file_id"]
    create = {"input_file_id": ids["file_id"], "endpoint": "/chat/completions", "completion_window": "24h"}
    batches = url.split("/batches/")[0] + "/batches"
    ids["cancellable"] = http.post(batches, params={"api-version": "2024-10-21"}, json=create).json()["id"]


def test_every_input_sample_of_the_seeds_runs_to_completion(emulator_server: EmulatorServer, tmp_path: Path) -> None:
    blocks: list[list[str]] = []
    for text in seed_texts().values():
        block: list[str] = []
        for line in [*text.splitlines(), ""]:
            if line.startswith('{"custom_id"'):
                block.append(line.replace(PLACEHOLDER_MODEL, DEPLOYMENT))
            elif block:
                blocks.append(block)
                block = []
    headers = {"api-key": emulator_server.key}
    base = f"{emulator_server.url}/openai"
    q = "?api-version=2024-10-21"
    with httpx2.Client(base_url=base, headers=headers, timeout=30) as http:
        ids = []
        for block in blocks:
            body = ("\n".join(block) + "\n").encode()
            files = {"file": ("test.jsonl", body, "application/json")}
            file_id = http.post(f"/files{q}", data={"purpose": "batch"}, files=files).raise_for_status().json()["id"]
            create = {"input_file_id": file_id, "endpoint": "/chat/completions", "completion_window": "24h"}
            ids.append(http.post(f"/batches{q}", json=create).raise_for_status().json()["id"])
        emulator_server.clock.advance(DONE)
        batches = [http.get(f"/batches/{batch_id}{q}").json() for batch_id in ids]
    assert len(blocks) == 9  # standard input, base64 image and image url (000, 001); standard input (003, x3)
    assert [(b["status"], b["request_counts"]["completed"]) for b in batches] == [
        ("completed", len(block)) for block in blocks
    ]
