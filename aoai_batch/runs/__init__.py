"""Runs (SPEC §9): one job of any size, split into shards across deployments under the enqueued-token quota.

In the order a run goes through them:
- `models.py`: the shapes tools, resources and the CLI show (`Run`, `ShardView`, `DeploymentLoad`, `RunPage`,
  `RunResultRow`, `RunResultsSummary`).
- `plan.py`: the run's whole input file (built from prompts, requests or rows, or copied from a batch file of
  any size), validated in one pass, and its shards (bounded by requests, bytes and estimated tokens); a shard's
  file with its deployment named in every line.
- `pool.py`: the deployments a run may use, on this resource and on those of the `AOAI_BATCH_POOL` file, each
  with its enqueued-token limit and the service that reaches it.
- `ledger.py` / `scheduler.py`: the estimated tokens in flight per deployment; one step of a run (collect what
  finished, queue retries, submit what fits, back off on `token_limit_exceeded`).
- `records.py`: runs, shards and learned limits in the registry (durable; every submit under an idempotency key).
- `merge.py`: every shard's results joined into one file in input order.
- `service.py`: `RunService`, what tools and the CLI call.
"""
