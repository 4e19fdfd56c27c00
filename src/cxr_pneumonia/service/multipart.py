"""multipart/related bodies (RFC 2387), as STOW-RS sends DICOM instances: split into (type, bytes)."""

from __future__ import annotations

from ..errors import InputError


class UnsupportedMediaType(InputError):
    code = "unsupported_media_type"
    http_status = 415


def boundary_of(content_type: str) -> tuple[str, str | None]:
    """The boundary and the ``type`` parameter of a multipart/related Content-Type."""
    kind, *params = (p.strip() for p in content_type.split(";"))
    values = {}
    for param in params:
        name, _, value = param.partition("=")
        values[name.strip().lower()] = value.strip().strip('"')
    if kind.lower() != "multipart/related" or not values.get("boundary"):
        raise UnsupportedMediaType("expected multipart/related with a boundary")
    return values["boundary"], values.get("type")


def split_parts(body: bytes, boundary: str) -> list[tuple[str, bytes]]:
    """(Content-Type, content) of each part, in order."""
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start < 0:
        raise InputError("the body has no part with the declared boundary", code="malformed_multipart")
    parts: list[tuple[str, bytes]] = []
    position = start + len(delimiter)
    while True:
        if body[position : position + 2] == b"--":  # the close delimiter
            return parts
        header_end = body.find(b"\r\n\r\n", position)
        end = body.find(b"\r\n" + delimiter, header_end + 4 if header_end >= 0 else position)
        if header_end < 0 or end < 0:
            raise InputError("a part is not terminated by the boundary", code="malformed_multipart")
        media_type = ""
        for line in body[position:header_end].decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                media_type = value.strip()
        parts.append((media_type, body[header_end + 4 : end]))
        position = end + 2 + len(delimiter)
