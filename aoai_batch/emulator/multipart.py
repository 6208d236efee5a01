"""A streaming multipart/form-data reader: the file part goes straight to disk, other fields stay small."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from aoai_batch.emulator.api_errors import ApiError, invalid

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
FILE_FIELD = "file"


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data body, or a 400 saying what is wrong."""
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        raise invalid("Send the file as multipart/form-data with fields `purpose` and `file`.")
    boundary = options.get(b"boundary")
    if not boundary:
        raise invalid("The multipart/form-data content type has no boundary.")
    return boundary


class UploadReader:
    """Feeds body chunks to python-multipart; call `feed` from a worker thread (it writes to disk)."""

    def __init__(self, boundary: bytes, destination: Path, max_file_bytes: int) -> None:
        self.destination = destination
        self.max_file_bytes = max_file_bytes
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_bytes = 0
        self._file: IO[bytes] | None = None
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._value = bytearray()
        self._in_file = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except FormParserError as exc:
            raise invalid(f"The multipart body is malformed ({exc}).") from exc

    def finish(self) -> None:
        try:
            self._parser.finalize()
        except FormParserError as exc:
            raise invalid(f"The multipart body is malformed ({exc}).") from exc
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # python-multipart callbacks

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._value = bytearray()
        self._in_file = False

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise invalid("A multipart part has no name in its Content-Disposition header.")
        self._name = name.decode("utf-8", "replace")
        if self._name == FILE_FIELD and b"filename" in options:
            if self._file is not None:
                raise invalid("Send exactly one `file` part.")
            self.filename = options[b"filename"].decode("utf-8", "replace")
            self._file = open(self.destination, "xb")  # noqa: SIM115 (closed in finish/close)
            self._in_file = True
        elif len(self.fields) >= MAX_FIELDS:
            raise invalid("Too many form fields; send `purpose`, `file` and optionally `expires_after`.")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and self._file is not None:
            self.file_bytes += end - start
            if self.file_bytes > self.max_file_bytes:
                raise ApiError(413, "invalidPayload", f"The file is larger than {self.max_file_bytes} bytes; split it.")
            self._file.write(data[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise invalid(f"The form field {self._name!r} is too long.")

    def _part_end(self) -> None:
        if not self._in_file and self._name is not None:
            self.fields[self._name] = self._value.decode("utf-8", "replace")
        self._in_file = False
