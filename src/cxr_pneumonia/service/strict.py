"""One rule for every part of a request: what a route does not define is refused, never ignored.

Unknown query parameters and form fields are a 422 (a typo such as ``?preveiw=true`` must not be
answered as if it were not there); a field sent twice where the route takes one is a 422; two
credentials (an X-API-Key and a Bearer token) are a 400, because silently preferring one would
act as someone the caller may not have meant.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant

from .exceptions import DuplicateField, UnknownField, UnknownParameter

_known: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def known_query_only(request: Request) -> None:
    """Router dependency: refuse query parameters the matched route does not declare."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.query_params:
        return
    known = _known.get(id(route))
    if known is None:
        known = _known[id(route)] = frozenset(_query_names(dependant))
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        takes = ", ".join(sorted(known)) or "none"
        raise UnknownParameter(f"unknown query parameter(s) {names}; this route takes: {takes}")


def only_form_fields(
    *allowed: str, single: tuple[str, ...] = ()
) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """Refuse form fields the route does not define (FastAPI would silently ignore them), and a
    field of ``single`` sent more than once (FastAPI would silently take one)."""

    async def check(request: Request) -> None:
        form = await request.form()  # already parsed by FastAPI: this is the cached copy
        unknown = sorted({name for name in form if name not in allowed})
        if unknown:
            names = ", ".join(repr(name[:40]) for name in unknown[:5])
            raise UnknownField(f"unknown form field(s) {names}; this route takes {', '.join(allowed)}")
        for name in single:
            if len(form.getlist(name)) > 1:
                raise DuplicateField(f"{len(form.getlist(name))} {name!r} parts sent; this route reads one")

    return check
