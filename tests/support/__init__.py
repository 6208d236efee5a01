"""What the tests share, and the only test code a test module may import (tests/test_support_imports.py).

- `batch_files`: request lines and batch files to feed the validator, the emulator and the tools.
- `clients`: SDK clients on the emulator (Azure-style and /v1), upload, start a batch, read a file's lines.
- `clock`: how far to move the emulator's fake clock for a batch to reach a state.
- `credentials`: a stand-in for DefaultAzureCredential.
- `http_server`: an ASGI app (the emulator, a fake upstream, the MCP server) served by uvicorn on a loopback port.
- `oauth`: an OAuth issuer on loopback that signs access tokens; a transport recording the headers sent on.
- `inbox`: the notifications an MCP client receives, waited on by kind.
- `mcp`: the MCP harness: settings on the emulator, a tool's structured answer, a batch started by tools.
- `apps`: MCP Apps: a client that shows views, and a loopback host page that runs the job view in a browser.
- `browser`: Debian's chromium under Playwright (skipped, or failed in CI, without it), and where screenshots go.
- `cli`: a CLI run isolated from the shell's Azure settings.
- `runs`: runs on the emulator's fake clock (a clock-moving sleep, a run driven to its end, batches counted).
- `paths`: the repository's root and its test fixtures.
- `postgres`: a throwaway PostgreSQL server (initdb + pg_ctl; skipped, or failed under REQUIRE_POSTGRES, without it).
- `stores`: registries on either engine (the `open_store` fixture's opener), batches to save, a clock to move.
- `seeds`, `seed_replay`: Azure's documentation pages and their code, replayed against the emulator.

Fixtures live in the conftest files; everything here is a plain function, class or constant.
"""
