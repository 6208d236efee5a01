"""The job view in a real browser: chromium runs server/view.html inside a host page that speaks the Apps
protocol (tests/support/apps.py) to the real server through `mcp.Client`, on the emulator's fake clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from playwright.async_api import ConsoleMessage, FrameLocator, Page, expect

from aoai_batch.emulator import Emulator, FakeClock
from aoai_batch.models import RequestCounts, ResultCounts, Usage
from aoai_batch.runs.models import DeploymentLoad, Run, RunResultsSummary, ShardView
from server.app import build_server
from server.state import AppState
from tests.support.apps import APPS_HOST, HostBridge
from tests.support.batch_files import write_workspace_batch
from tests.support.browser import artifacts_dir, browser_page, chromium_or_skip
from tests.support.clock import HOURS, PER_REQUEST, VALIDATION
from tests.support.http_server import served_here
from tests.support.mcp import WAIT, make_settings, start_batch, structured
from tests.support.runs import SHARD_REQUESTS
from tools.view import PAGE_ROWS, VIEW_URI

pytestmark = pytest.mark.slow

REQUESTS = PAGE_ROWS + 5  # two pages of rows
WAIT_MS = WAIT * 1000


@pytest.fixture
def chromium() -> Path:
    return chromium_or_skip()


async def open_view(page: Page, url: str, problems: list[str]) -> FrameLocator:
    page.on("console", lambda message: _keep_problem(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(url)
    return page.frame_locator("#view")


def _keep_problem(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":  # a script error, or the CSP refusing something the view tried to load
        problems.append(message.text)


async def show_tool(page: Page, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("([name, args]) => openTool(name, args)", [name, arguments])
    return result


async def test_the_view_follows_a_batch_on_the_emulator_and_cancels_and_fetches_it(
    app: MCPServer[AppState], workspace: Path, fake_clock: FakeClock, chromium: Path, tmp_path: Path
) -> None:
    path = write_workspace_batch(workspace, "view.jsonl", requests=REQUESTS)
    problems: list[str] = []
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        batch_id = (await start_batch(client, path))["id"]
        bridge = HostBridge(client, VIEW_URI)
        async with served_here(bridge.app) as url, browser_page(chromium) as page:
            view = await open_view(page, url, problems)
            await show_tool(page, "get_batch", {"batch_id": batch_id})

            await expect(view.locator("#status")).to_have_text("validating", timeout=WAIT_MS)
            await expect(view.locator("#title")).to_have_text(f"Batch {batch_id}")
            await expect(view.locator("#progress-text")).to_contain_text("0 requests done")  # none counted yet
            background = await view.locator("body").evaluate("body => getComputedStyle(body).backgroundColor")
            assert background == "rgb(16, 20, 24)"  # the host's --color-background-primary, not the fallback

            fake_clock.advance(VALIDATION + 3 * PER_REQUEST + 1)
            await expect(view.locator("#status")).to_have_text("in_progress", timeout=WAIT_MS)
            await expect(view.locator("#progress-text")).to_contain_text(f"3 of {REQUESTS} requests", timeout=WAIT_MS)
            await expect(view.locator('#counts [data-name="completed"] b')).to_have_text("3")
            assert "view_job" in bridge.calls  # the view refreshed itself through the app-only tool

            await view.locator("#cancel").click()
            await expect(view.locator("#confirm")).to_be_visible()
            assert "cancel_batch" not in bridge.calls  # nothing happens before the confirmation
            await view.locator("#confirm-yes").click()
            await expect(view.locator("#status")).to_have_text("cancelling", timeout=WAIT_MS)
            status = structured(await client.call_tool("get_batch", {"batch_id": batch_id}))["status"]
            assert status in {"cancelling", "cancelled"}

            fake_clock.advance(3600)
            await expect(view.locator("#status")).to_have_text("cancelled", timeout=WAIT_MS)
            await view.locator("#fetch").click()
            await expect(view.locator("#results-section")).to_be_visible(timeout=WAIT_MS)
            rows = view.locator("#rows tr")
            await expect(rows).to_have_count(PAGE_ROWS, timeout=WAIT_MS)  # the first page, through view_job
            await expect(view.locator('#outcomes [data-name="succeeded"] b')).to_have_text("3")
            await expect(view.locator('#outcomes [data-name="missing"] b')).to_have_text(str(REQUESTS - 3))
            await expect(rows.nth(0)).to_contain_text("Question 0?")  # the question beside its answer
            await expect(rows.nth(0)).to_contain_text("Echo: Question 0?")
            await page.screenshot(path=artifacts_dir(tmp_path) / "view.png")
            await view.locator("#more").click()
            await expect(rows).to_have_count(REQUESTS, timeout=WAIT_MS)
            await expect(view.locator("#more")).to_be_hidden()

            teardown = await page.evaluate("tearDown()")
            assert teardown["result"] == {}
    assert bridge.calls.count("cancel_batch") == 1
    assert "fetch_results" in bridge.calls
    assert problems == []


async def test_the_view_follows_a_run_through_view_job_and_fetches_its_merged_rows(
    emulator: Emulator, fake_clock: FakeClock, chromium: Path, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, max_requests=SHARD_REQUESTS)  # a few requests make three shards
    settings.workspace_dirs[0].mkdir(parents=True)
    app = build_server(settings, transport=emulator.transport(), first_poll_delay=0)
    prompts = [f"Question {n}?" for n in range(REQUESTS)]
    problems: list[str] = []
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        started = structured(
            await client.call_tool("start_run", {"deployments": ["gpt-4o-mini"], "prompts": prompts, "name": "faq"})
        )
        run_id = started["id"]
        bridge = HostBridge(client, VIEW_URI)
        async with served_here(bridge.app) as url, browser_page(chromium) as page:
            view = await open_view(page, url, problems)
            await show_tool(page, "get_run", {"run_id": run_id})

            await expect(view.locator("#title")).to_have_text(f"Run faq · {run_id}", timeout=WAIT_MS)
            await expect(view.locator("#status")).to_have_text("running")
            await expect(view.locator("#run-section")).to_be_visible()
            await expect(view.locator("#shards .cell")).not_to_have_count(0)
            await expect(view.locator('[data-deployment="gpt-4o-mini"]')).to_contain_text("tokens in flight")

            status = view.locator("#status")
            with anyio.fail_after(WAIT):  # the runs watcher takes the run along as the hours pass
                while await status.text_content() != "completed":
                    fake_clock.advance(HOURS)
                    await anyio.sleep(0.1)
            assert "view_job" in bridge.calls  # the view refreshed itself through the app-only tool
            assert bridge.calls.count("get_run") == 1  # the host's call that opened the view: refreshes are view_job's
            await expect(view.locator('#shards [data-name="done"] b')).to_have_text("3")
            await expect(view.locator("#progress-text")).to_contain_text(f"{REQUESTS} of {REQUESTS} requests")
            await expect(view.locator("#cancel")).to_be_hidden()

            await view.locator("#fetch").click()
            rows = view.locator("#rows tr")
            await expect(rows).to_have_count(PAGE_ROWS, timeout=WAIT_MS)  # the first page, through view_job
            await expect(view.locator('#outcomes [data-name="succeeded"] b')).to_have_text(str(REQUESTS))
            await expect(rows.nth(0)).to_contain_text("Echo: Question 0?")
            await page.screenshot(path=artifacts_dir(tmp_path) / "view-run-live.png")
            await view.locator("#more").click()
            await expect(rows).to_have_count(REQUESTS, timeout=WAIT_MS)
    assert bridge.calls.count("fetch_run_results") == 1
    assert problems == []


def a_run() -> Run:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    return Run(
        id="run_abc",
        name="reviews",
        status="running",
        terminal=False,
        created_at=now,
        updated_at=now,
        endpoint="/chat/completions",
        deployments=["gpt-4o-mini", "gpt-4o"],
        retries=2,
        input_path="/ws/reviews.jsonl",
        requests=3000,
        estimated_input_tokens=1_500_000,
        request_counts=RequestCounts(total=3000, completed=1200, failed=30),
        progress_percent=41.0,
        shard_counts={"done": 2, "submitted": 1, "queued": 3},
        shards=[ShardView(index=0, kind="input", requests=500, estimated_tokens=250_000, state="done")],
        ledger=[
            DeploymentLoad(
                deployment="gpt-4o-mini", in_flight_tokens=900_000, limit=1_000_000, limit_source="settings"
            ),
            DeploymentLoad(deployment="gpt-4o", in_flight_tokens=0, limit=None),
        ],
        waiting_for="3 shards queued: gpt-4o-mini has 0.9M of 1M enqueued tokens in flight",
        backend="emulator",
    )


def tool_result(model: Run | RunResultsSummary, **extra: object) -> dict[str, Any]:
    data = {**model.model_dump(mode="json"), **extra}
    return {"content": [{"type": "text", "text": "(text for the model)"}], "structuredContent": data}


async def test_the_view_renders_a_run_and_its_results_with_cost(
    app: MCPServer[AppState], chromium: Path, tmp_path: Path
) -> None:
    problems: list[str] = []
    summary = RunResultsSummary(
        run_id="run_abc",
        run_status="completed",
        format="jsonl",
        counts=ResultCounts(succeeded=2990, failed=10),
        usage=Usage(prompt_tokens=1_400_000, completion_tokens=300_000, total_tokens=1_700_000),
        failures_by_code={"content_filter": 7, "server_error": 3},
    )
    async with Client(app, mode="legacy", extensions=[APPS_HOST]) as client:
        bridge = HostBridge(client, VIEW_URI)
        async with served_here(bridge.app) as url, browser_page(chromium) as page:
            view = await open_view(page, url, problems)
            await page.evaluate(
                "([args, result]) => showResult('get_run', args, result)", [{"run_id": "run_abc"}, tool_result(a_run())]
            )
            await expect(view.locator("#title")).to_have_text("Run reviews · run_abc", timeout=WAIT_MS)
            await expect(view.locator("#run-section")).to_be_visible()
            shards = await view.locator("#shards").inner_text()
            assert "queued" in shards
            assert "submitted" in shards
            mini = view.locator('[data-deployment="gpt-4o-mini"]')
            await expect(mini).to_contain_text("900,000 of 1,000,000 tokens in flight")
            await expect(mini.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "90")
            await expect(view.locator('[data-deployment="gpt-4o"]')).to_contain_text("of unknown tokens")
            await expect(view.locator("#waiting")).to_contain_text("3 shards queued")
            await expect(view.locator("#cancel")).to_have_text("Cancel run…")
            await page.screenshot(path=artifacts_dir(tmp_path) / "view-run.png")

            cost = {"currency": "USD", "total": 0.3675, "input": 0.105, "output": 0.18}
            await page.evaluate(
                "([args, result]) => showResult('fetch_run_results', args, result)",
                [{"run_id": "run_abc"}, tool_result(summary, cost=cost)],
            )
            # The host's tool-result after the first is a new call's: the page sends it as it came.
            await expect(view.locator("#outcomes")).to_contain_text("$0.3675", timeout=WAIT_MS)
            await expect(view.locator("#failures")).to_contain_text("content_filter")
            await page.screenshot(path=artifacts_dir(tmp_path) / "view-run-results.png")
    assert problems == []
