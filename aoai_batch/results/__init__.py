"""A finished batch's results: downloaded, joined to its input, summarised. The modules, in pipeline order:

- `fetch`: `fetch_results`, what `BatchService.fetch_results` delegates to: refuses a running batch,
  downloads the output, error and input files into a scratch folder, joins them, publishes the files
  whole and saves the summary in the registry.
- `paths`: where the results, errors and retry files go (a free `-N` suffix unless overwriting).
- `join`: `join_results`, pure files in, files out: one row per input request, in input order, and the
  retry file; bounded memory (answers past a budget spill to a temporary file).
- `fast_lines`: the typed fast path (msgspec) for the common line shapes, a plain chat request or answer;
  anything else goes to `lines`, so it only ever returns what `lines` would.
- `lines`: the general reader of every line shape (the question of an input line, the outcome of an
  output or error line) and the answer columns a row is made of (`plain_answer_columns`).
- `csv_table`: the results file as CSV, spreadsheet-safe.
- `usage_tally`: the tokens the output file reports, by model (cached ones apart): what the cost is priced from.
- `summary`: the `FetchSummary` of a join (or of a batch that never ran), with a note for each special case.

Nothing is re-exported here: import from the module (`from aoai_batch.results.join import join_results`),
so that reading a file does not load the client.
"""
