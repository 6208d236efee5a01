"""MCP Apps on the test side: a client that says it shows views, and a host page that speaks the Apps protocol.

`APPS_HOST`: the client extension a host that renders `text/html;profile=mcp-app` views advertises.
`HostBridge`: a tiny loopback web app (Starlette, served with `http_server.served_here`) that plays the
host of the job view in a real browser: its page (`HOST_PAGE`) loads the view in a sandboxed iframe, served
under the Apps spec's default CSP, answers `ui/initialize` with a host context (theme and style variables),
sends `ui/notifications/tool-input` and `ui/notifications/tool-result` once the view is initialized, and
forwards the view's `tools/call` requests over HTTP to an `mcp.Client` of the real server.
"""

from __future__ import annotations

from typing import Any

import orjson
from mcp import Client
from mcp.client import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

APPS_HOST = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})

# The spec's default when a resource declares no `ui.csp`: no network at all.
DEFAULT_VIEW_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' data:; connect-src 'none'; frame-src 'none'; object-src 'none'"
)
HOST_CONTEXT: dict[str, Any] = {
    "theme": "dark",
    "styles": {"variables": {"--color-background-primary": "#101418", "--color-text-primary": "#e8eef4"}},
    "displayMode": "inline",
    "locale": "en-US",
    "platform": "web",
}

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>test host</title>
<style>body{margin:0;background:#000} iframe{border:0;width:760px;height:900px;background:#101418}</style></head>
<body>
<iframe id="view" sandbox="allow-scripts" src="/view"></iframe>
<script>
"use strict";
const frame = document.getElementById("view");
const log = [];                 // every message from the view, for the test to read
let call = null;                // {name, arguments} of the tool call that opened the view
let result = null;              // its CallToolResult
let initialized = false;
const toView = (message) => frame.contentWindow.postMessage({jsonrpc: "2.0", ...message}, "*");
async function bridge(method, params) {
  const response = await fetch("/rpc", {method: "POST", body: JSON.stringify({method, params})});
  return response.json();
}
function sendToolData() {
  if (!initialized || !result) return;
  toView({method: "ui/notifications/tool-input", params: {arguments: call.arguments}});
  toView({method: "ui/notifications/tool-result", params: result});
}
window.addEventListener("message", async (event) => {
  if (event.source !== frame.contentWindow) return;
  const message = event.data;
  log.push(message);
  if (message.method === "ui/initialize") {
    toView({id: message.id, result: {protocolVersion: "2026-01-26", hostInfo: {name: "test-host", version: "1"},
      hostCapabilities: {serverTools: {}}, hostContext: window.HOST_CONTEXT}});
  } else if (message.method === "ui/notifications/initialized") {
    initialized = true;
    sendToolData();
  } else if (message.method === "tools/call" || message.method === "resources/read") {
    const answer = await bridge(message.method, message.params);
    toView(answer.error ? {id: message.id, error: answer.error} : {id: message.id, result: answer.result});
  } else if (message.id !== undefined && message.method !== undefined) {
    toView({id: message.id, error: {code: -32601, message: "Method not found"}});
  }
});
// What the test calls: a tool through the server, whose result the view then shows.
window.openTool = async (name, args) => {
  call = {name, arguments: args};
  const answer = await bridge("tools/call", {name, arguments: args});
  result = answer.result;
  sendToolData();
  return result;
};
window.showResult = (name, args, toolResult) => {
  call = {name, arguments: args};
  result = toolResult;
  sendToolData();
};
window.tearDown = () => new Promise((resolve) => {
  const id = 9999;
  const listener = (event) => {
    if (event.data && event.data.id === id) { removeEventListener("message", listener); resolve(event.data); }
  };
  addEventListener("message", listener);
  toView({id, method: "ui/resource-teardown", params: {reason: "test"}});
});
window.viewLog = () => log;
</script></body></html>
"""


class HostBridge:
    """The host's web side: its page, the view (from the server's `ui://` resource), and `/rpc` to the server."""

    def __init__(self, client: Client, view_uri: str) -> None:
        self.client = client
        self.view_uri = view_uri
        self.calls: list[str] = []  # the tools the view called, in order
        self.app = Starlette(
            routes=[
                Route("/", self.host_page),
                Route("/view", self.view),
                Route("/rpc", self.rpc, methods=["POST"]),
                Route("/favicon.ico", lambda request: Response(status_code=204)),
            ]
        )

    async def host_page(self, request: Request) -> Response:
        context = orjson.dumps(HOST_CONTEXT).decode()
        return HTMLResponse(HOST_PAGE.replace("<script>", f"<script>window.HOST_CONTEXT = {context};", 1))

    async def view(self, request: Request) -> Response:
        read = await self.client.read_resource(self.view_uri)
        content = read.contents[0]
        assert content.mime_type == APP_MIME_TYPE
        text = getattr(content, "text", "")
        return HTMLResponse(text, headers={"Content-Security-Policy": DEFAULT_VIEW_CSP})

    async def rpc(self, request: Request) -> Response:
        message = orjson.loads(await request.body())
        params = message.get("params") or {}
        if message.get("method") == "tools/call":
            self.calls.append(params["name"])
            result = await self.client.call_tool(params["name"], params.get("arguments") or {})
            return JSONResponse({"result": result.model_dump(mode="json", by_alias=True, exclude_none=True)})
        if message.get("method") == "resources/read":
            read = await self.client.read_resource(params["uri"])
            return JSONResponse({"result": read.model_dump(mode="json", by_alias=True, exclude_none=True)})
        return JSONResponse({"error": {"code": -32601, "message": "Method not found"}})
