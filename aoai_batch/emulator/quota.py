"""The enqueued-token quota of Global-Batch deployments (`AOAI_EMULATOR_ENQUEUED_TOKENS`, `AOAI_EMULATOR_QUOTA_MODE`).

As Azure documents it: "the number of tokens present in the file are counted. Until the batch job reaches a
terminal state, those tokens will count against your total enqueued token limit." A file's tokens are
estimated once, at its first batch, and kept on its record; a batch holds them (`held_tokens`, a column the
count sums) from its create until it is terminal. The check and the insert are one SQLite transaction
(`State.put_new_batch`), so processes sharing a home count the same batches.

The estimate is the characters one (`aoai_batch.tokens`, `APPROXIMATE`), request by request over the whole
file, so a file's count is the sum of its lines' counts: what a client that estimates each line the same way
adds up for a shard is what the emulator counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from aoai_batch.endpoints import bare_endpoint
from aoai_batch.quota import TOKEN_LIMIT_EXCEEDED, token_amount
from aoai_batch.tokens import APPROXIMATE, TokenEstimator


def file_tokens(path: Path) -> tuple[str | None, int]:
    """The deployment the file's first request names, and the estimated input tokens of all its requests.

    A line that is not a request is skipped: validation fails the batch for it anyway.
    """
    estimator = TokenEstimator(counter=APPROXIMATE)
    deployment: str | None = None
    with path.open("rb") as lines:
        for line in lines:
            try:
                request = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            body = request.get("body") if type(request) is dict else None
            url = request.get("url") if body is not None else None
            if type(body) is not dict or type(url) is not str:
                continue
            if deployment is None and type(body.get("model")) is str:
                deployment = body["model"]
            estimator.add(bare_endpoint(url), body)
    return deployment, estimator.total


def limit_message(deployment: str, limit: int, held: int, tokens: int) -> str:
    """Azure's words for a deployment whose enqueued tokens would pass its limit, with the figures."""
    if tokens > limit:
        why = f"this batch's {token_amount(tokens)} tokens alone are more than that"
    else:
        why = f"{token_amount(held)} tokens are already enqueued and this batch adds {token_amount(tokens)}"
    return (
        f"Enqueued token limit reached for deployment {deployment}: the configured limit of {token_amount(limit)} "
        f"would be passed ({why}). Please either increase the limit or try again once the current jobs have finished."
    )


def limit_error(message: str) -> dict[str, Any]:
    """The `errors.data` entry of a batch failed in validation for quota."""
    return {"code": TOKEN_LIMIT_EXCEEDED, "message": message, "param": None, "line": None}
