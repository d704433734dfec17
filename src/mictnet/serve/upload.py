"""A multipart upload streamed, chunk by chunk, into a temporary file (never whole in memory)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .tempdir import UPLOAD_PREFIX

MAX_SUFFIX = 10  # characters after the dot kept from the client's file name


class UploadError(Exception):
    """A request the server refuses: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Upload:
    """The uploaded file: its temporary ``path`` and the client's ``name`` (shown, never opened)."""

    path: Path
    name: str


def client_name(filename: str) -> str:
    """The last component of a client's file name (for display only)."""
    return PurePosixPath(filename.replace("\\", "/")).name[:200] or "upload"


def safe_suffix(name: str) -> str:
    """The name's extension when it is short and alphanumeric (``.mp4``), else ``""``."""
    suffix = PurePosixPath(name).suffix
    ext = suffix[1:]
    return suffix if ext.isascii() and ext.isalnum() and len(ext) <= MAX_SUFFIX else ""


class _FilePart:
    """``python_multipart`` callbacks: the first part named ``field`` with a file name goes to a
    temporary file in ``directory``; other parts are skipped."""

    def __init__(self, field: str, directory: str | None) -> None:
        self.field = field.encode()
        self.directory = directory
        self.headers: dict[bytes, bytes] = {}
        self.header = [b"", b""]
        self.out: IO[bytes] | None = None
        self.upload: Upload | None = None

    def callbacks(self) -> dict:
        return {"on_part_begin": self.headers.clear,
                "on_header_field": lambda d, s, e: self._add(0, d[s:e]),
                "on_header_value": lambda d, s, e: self._add(1, d[s:e]),
                "on_header_end": self._header_end, "on_headers_finished": self._open,
                "on_part_data": self._write, "on_part_end": self.close}

    def _add(self, i: int, data: bytes) -> None:
        self.header[i] += data

    def _header_end(self) -> None:
        self.headers[self.header[0].lower()] = self.header[1]
        self.header = [b"", b""]

    def _open(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if (self.upload is not None or options.get(b"name") != self.field
                or b"filename" not in options):
            return
        name = client_name(options[b"filename"].decode("utf-8", "replace"))
        fd, path = tempfile.mkstemp(prefix=UPLOAD_PREFIX, suffix=safe_suffix(name),
                                    dir=self.directory)
        self.out = os.fdopen(fd, "wb")
        self.upload = Upload(Path(path), name)

    def _write(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None:
            self.out.write(data[start:end])

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def discard(self) -> None:
        self.close()
        if self.upload is not None:
            self.upload.path.unlink(missing_ok=True)


async def receive_file(request: Request, field: str, max_bytes: int,
                       directory: str | None = None) -> Upload:
    """Stream the multipart ``field`` of ``request`` into a temporary file (the caller deletes
    it). Raises :class:`UploadError`: 400 (not multipart, no such field), 413 (body over
    ``max_bytes``; reading stops there). However reading ends otherwise (the client disconnects:
    Starlette's ``ClientDisconnect``; the task is cancelled), the file is gone first."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in options:
        raise UploadError(400, f'expected a multipart/form-data upload with a "{field}" field')
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UploadError(413, _too_large(max_bytes))
    part = _FilePart(field, directory)
    parser = MultipartParser(options[b"boundary"], part.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise UploadError(413, _too_large(max_bytes))
            parser.write(chunk)
        parser.finalize()
    except ValueError as err:  # python_multipart's errors (bad framing) are ValueErrors
        part.discard()
        raise UploadError(400, f"malformed multipart upload: {err}") from None
    except BaseException:  # UploadError, a disconnected client, a cancelled task
        part.discard()
        raise
    part.close()
    if part.upload is None:
        raise UploadError(400, f'no "{field}" file field in the upload')
    return part.upload


def _too_large(max_bytes: int) -> str:
    return f"upload larger than the limit of {max_bytes / 2**20:g} MB (--max-upload-mb)"
