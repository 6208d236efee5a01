"""The icons of the server and of each tool: tiny SVG glyphs as data URIs, one for light and one for dark themes.

A client reads every tool's icons in `tools/list` at each session start, so each glyph is a single short path
on a 16x16 grid, stroked in one colour: dark on light themes, light on dark ones. No network, no files.
"""

from __future__ import annotations

from urllib.parse import quote

from mcp_types import Icon

LIGHT_STROKE = "#147"  # dark blue, on a light background
DARK_STROKE = "#9cf"  # light blue, on a dark background
SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16' fill='none' stroke='{stroke}' stroke-width='2'>"
    "<path d='{path}'/></svg>"
)
# The server: three stacked sheets, a batch of requests.
SERVER_GLYPH = "M8 2 2 5l6 3 6-3zM2 8l6 3 6-3M2 11l6 3 6-3"
TOOL_GLYPHS: dict[str, str] = {
    "build_batch_file": "M3 2h7l3 3v9H3zM8 7v5M5.5 9.5h5",  # a page with a plus
    "validate_batch_file": "M3 8.5 6.5 12 13 4",  # a check mark
    "upload_file": "M8 12V3M4.5 6.5 8 3l3.5 3.5M3 14h10",  # an arrow up to a line
    "list_files": "M3 2h7l3 3v9H3zM5.5 8h5M5.5 11h5",  # a page with lines
    "create_batch": "M5 3v10l8-5z",  # play
    "get_batch": "M8 2a6 6 0 1 0 .01 0M8 5v3l2 2",  # a clock
    "list_batches": "M3 4h10M3 8h10M3 12h10",  # a list
    "cancel_batch": "M4 4l8 8M12 4l-8 8",  # a cross
    "fetch_results": "M8 3v9M4.5 8.5 8 12l3.5-3.5M3 14h10",  # an arrow down to a line
    "start_run": "M2 3v10l5-5zM9 3v10l5-5z",  # fast-forward: many batches
    "get_run": "M2 13h12M4 13V9M8 13V5M12 13V7",  # bars: shards in progress
    "list_runs": "M2 4h2M6 4h8M2 8h2M6 8h8M2 12h2M6 12h8",  # a bulleted list
    "cancel_run": "M8 2a6 6 0 1 0 .01 0M5 5l6 6",  # a circle struck through
    "fetch_run_results": "M3 3h10M3 6h10M8 8v6M5.5 11.5 8 14l2.5-2.5",  # rows, an arrow down
}


def data_uri(path: str, stroke: str) -> str:
    """The glyph as an `image/svg+xml` data URI (quotes stay single, so little needs escaping)."""
    return "data:image/svg+xml," + quote(SVG.format(path=path, stroke=stroke), safe=" '/:=.,-")


def themed(path: str) -> list[Icon]:
    """The glyph for light and for dark themes (its MIME type is in the data URI)."""
    return [
        Icon(src=data_uri(path, LIGHT_STROKE), theme="light"),
        Icon(src=data_uri(path, DARK_STROKE), theme="dark"),
    ]


SERVER_ICONS = themed(SERVER_GLYPH)


def tool_icons(name: str) -> list[Icon]:
    """A tool's icons: its own glyph, or the server's for a tool without one."""
    return themed(TOOL_GLYPHS.get(name, SERVER_GLYPH))
