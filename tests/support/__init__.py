"""What the tests share, and the only test code a test module may import (tests/test_support_imports.py).

- `batch_files`: request lines and batch files to feed the validator, the emulator and the tools.
- `clients`: SDK clients on the emulator (Azure-style and /v1), upload, start a batch, read a file's lines.
- `clock`: how far to move the emulator's fake clock for a batch to reach a state.
- `credentials`: a stand-in for DefaultAzureCredential.
- `http_server`: an ASGI app (the emulator, or a fake upstream) served by uvicorn on a loopback port.
- `inbox`: the notifications an MCP client receives, waited on by kind.
- `mcp`: the MCP harness: settings on the emulator, a tool's structured answer, a batch started by tools.
- `cli`: a CLI run isolated from the shell's Azure settings.
- `runs`: runs on the emulator's fake clock (a clock-moving sleep, a run driven to its end, batches counted).
- `paths`: the repository's root and its test fixtures.
- `seeds`, `seed_replay`: Azure's documentation pages and their code, replayed against the emulator.

Fixtures live in the conftest files; everything here is a plain function, class or constant.
"""
