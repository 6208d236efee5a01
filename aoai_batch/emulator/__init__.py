"""An emulator of the Azure OpenAI Files + Batches data plane (SPEC §6): a real HTTP service, or in-process.

`Emulator` (`runtime.py`) holds it together: its state, its background work (the ticker of a real-time clock,
an engine's worker), the ASGI app servers run and an in-process transport. A request meets the modules in
this order:

    app.py          the routes of each flavor (`/openai/...`, `/openai/v1/...`, OpenAI's `/v1/...`), error bodies
    gate.py         before any route: the key, the api-version, injected latency and faults (`faults.py`)
    operations.py   what a route does to files and batches, HTTP aside: uploads (`multipart.py`, streamed to
                    disk), expiry (`expiry.py`), `ApiError` (`api_errors.py`) for what a request got wrong,
                    and the enqueued-token quota at create (`quota.py`)
    lifecycle.py    a batch's state machine on the clock (`clock.py`): validation, its work files, cancel,
                    expiry, publishing its output; one process at a time per batch (`lease.py`)
    echo.py         the engines (`lifecycle.Engine`): echo answers inline, at the pace the clock sets;
    forward.py      forward sends each request to an OpenAI-compatible endpoint, from a worker task
    lines.py        output and error lines in Azure's shape, and the requests that fail on purpose
    state.py        records (`records.py`) in SQLite, file contents in folders, under the emulator's home

and back out: `listing.py` (paging and order) and `odata.py` (`$filter`/`$orderby`) pick what a list shows,
`wire.py` writes records in Azure's standard or legacy shape or OpenAI's.
"""

from aoai_batch.emulator.clock import EmulatorClock, FakeClock, SystemClock
from aoai_batch.emulator.runtime import Emulator

__all__ = ["Emulator", "EmulatorClock", "FakeClock", "SystemClock"]
