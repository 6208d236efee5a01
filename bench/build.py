"""Benchmark: build_batch_file on 100,000 CSV rows with a template, against a bare csv + orjson.dumps loop.

The bare loop reads the rows with csv.DictReader, fills the template with str.format and writes each
request line with orjson.dumps: the least any builder must do. The builder also checks every line,
estimates tokens, and writes atomically. Both run in turns; the fastest of each is compared. Times are
CPU seconds (user + system): the machine may be shared, and CPU time is what a busy neighbour disturbs least.
Target: ratio <= 2.0.

    python bench/build.py [--rows 100000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path

import orjson

from aoai_batch.builder import build_batch_file
from aoai_batch.limits import DEFAULT_LIMITS
from aoai_batch.tokens import get_counter

TEMPLATE = "Classify the sentiment of this review of {product} by {name} as positive, negative or mixed:\n{review}"
PRODUCTS = ["kettle", "headphones", "desk lamp", "running shoes", "coffee grinder", "backpack", "monitor"]
NAMES = ["Ana", "Ben", "Chloé", "Dmitri", "Eun-ji", "Farah", "Gustavo", "Hiro"]
PHRASES = [
    "arrived two days late",
    "works exactly as described",
    "the battery barely lasts a morning",
    "customer service replaced it without questions",
    "feels cheap but does the job",
    "I would buy it again",
    "the instructions were confusing",
    "much quieter than my old one",
]


def generate(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "name", "product", "review"])
        for n in range(rows):
            review = ". ".join(rng.choice(PHRASES) for _ in range(rng.randint(3, 9))).capitalize() + "."
            writer.writerow([f"review-{n:06d}", rng.choice(NAMES), rng.choice(PRODUCTS), review])


def bare(source: Path, output: Path) -> None:
    with open(source, encoding="utf-8", newline="") as rows, open(output, "wb") as out:
        for row in csv.DictReader(rows):
            line = {
                "custom_id": row["id"],
                "method": "POST",
                "url": "/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "max_tokens": 50,
                    "messages": [{"role": "user", "content": TEMPLATE.format(**row)}],
                },
            }
            out.write(orjson.dumps(line) + b"\n")


def builder(source: Path, output: Path) -> None:
    build_batch_file(
        deployment="gpt-4o-mini",
        source_path=source,
        template=TEMPLATE,
        id_field="id",
        body={"max_tokens": 50},
        output_path=output,
        overwrite=True,
        max_requests=DEFAULT_LIMITS.max_requests,
        max_bytes=DEFAULT_LIMITS.max_bytes,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    get_counter()  # the tokenizer's one-time load (~0.1 s) is not part of a build
    with tempfile.TemporaryDirectory() as tmp:
        source, output = Path(tmp) / "rows.csv", Path(tmp) / "batch.jsonl"
        generate(source, args.rows)
        print(f"source: {args.rows} rows, {source.stat().st_size / 1e6:.1f} MB CSV")
        times: dict[str, list[float]] = {"bare": [], "builder": []}
        for _ in range(args.repeat):
            for name, run in (("bare", bare), ("builder", builder)):
                start = time.process_time()
                run(source, output)
                times[name].append(time.process_time() - start)
        best_bare, best_builder = min(times["bare"]), min(times["builder"])
        print(f"bare loop (csv.DictReader + str.format + orjson.dumps): {best_bare:.3f} s CPU")
        print(f"build_batch_file: {best_builder:.3f} s CPU ({output.stat().st_size / 1e6:.1f} MB written)")
        print(f"ratio {best_builder / best_bare:.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
