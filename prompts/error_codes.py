"""What Azure's batch error codes mean and what to do about them (from Azure's Global Batch documentation)."""

from __future__ import annotations

AZURE_ERROR_CODES: dict[str, str] = {
    "invalid_json_line": "A line (or several) of the input file could not be parsed as JSON. Fix typos, brackets "
    "and quotes so every line is one JSON object, then resubmit.",
    "too_many_tasks": "The input file has more requests than allowed (100,000). Split it into several files "
    "(build_batch_file splits automatically) and resubmit.",
    "url_mismatch": "A line's url differs from the others, or does not match the batch's endpoint. Use the same "
    "url on every line and create the batch with that endpoint.",
    "model_not_found": "The deployment named in body.model was not found. Use the name of a Global-Batch "
    "deployment on this resource.",
    "duplicate_custom_id": "Two requests share a custom_id. Make every custom_id unique.",
    "empty_batch": "The batch had no requests to run. Check that the file has at least one request and that "
    "custom_ids are unique.",
    "empty_file": "The input file is empty. Put at least one request in it.",
    "model_mismatch": "Requests name different deployments in body.model. A batch file must use one deployment.",
    "invalid_request": "A line's schema is invalid, or the deployment is not a Global-Batch deployment. Check "
    "the request fields and that the deployment SKU is globalbatch.",
    "token_limit_exceeded": "The batch's tokens exceed the deployment's enqueued-token quota. Wait for other "
    "batches to finish, raise the quota (or enable dynamic quota), or split the work into smaller batches.",
    "file_too_large": "The input file is larger than the 200 MB limit. Split it into smaller files.",
    "bom": "The file starts with a UTF-8 byte order mark, which Azure rejects. Save it as UTF-8 without BOM.",
    "missing_custom_id": "A request has no custom_id. Give every request a unique custom_id.",
    "invalid_method": "A request's method is not POST. Batch requests must use POST.",
    "blank_line": "The file has an empty line. Remove blank lines.",
}


def meanings(codes: list[str]) -> dict[str, str]:
    """The meaning of each known code among `codes` (in order, once each)."""
    return {code: AZURE_ERROR_CODES[code] for code in dict.fromkeys(codes) if code in AZURE_ERROR_CODES}
