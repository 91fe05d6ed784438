"""RFC 9457 problem details for every app: one place that turns errors into ``application/problem+json``.

``problem_config()`` gives the Litestar keyword arguments (plugin, body size limit, handlers) an app factory
spreads into ``Litestar(...)``; handlers raise ``problem(...)`` or the shortcuts below for their own 4xx.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar, cast

import msgspec
import msgspec.inspect
from litestar import Litestar, Request, Response
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import HTTPException
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.plugins import InitPluginProtocol
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException, ProblemDetailsPlugin
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

from common.body_limit import PROBLEM_MEDIA_TYPE, BodyLimit

log = logging.getLogger(__name__)
T = TypeVar("T")
E = TypeVar("E", bound=Exception)

# Every request body in this project is a small JSON object; anything bigger is a mistake or an attack.
MAX_BODY_BYTES = 64 * 1024


class FieldError(msgspec.Struct):
    message: str
    key: str
    source: str


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem as these apps send it, for the OpenAPI documents. Some carry more members (an
    ``order_id``, an ``order_status``), so other properties are allowed."""

    status: int
    title: str
    detail: str
    errors: list[FieldError] | None = None  # a 400 of request validation: one entry per wrong field


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """The ``responses=`` of a route that can answer these problem statuses (``application/problem+json``)."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
            description=HTTPStatus(status).phrase,
        )
        for status in statuses
    }


def forbid_unknown_fields_in_docs(app: Litestar) -> Litestar:
    """Say in ``app``'s OpenAPI document what its bodies enforce, where Litestar leaves it out: a msgspec Struct
    declared with ``forbid_unknown_fields`` refuses other members (``additionalProperties: false``), and a lower
    bound of 0 is a bound (Litestar drops a ``minimum`` that is 0). A client reading the document would otherwise
    send what gets a 400."""
    strict = {cls.__name__: cls for cls in _subclasses(msgspec.Struct) if cls.__struct_config__.forbid_unknown_fields}
    for name, schema in (app.openapi_schema.components.schemas or {}).items():
        if name not in strict:
            continue
        schema.additional_properties = False
        info = cast(msgspec.inspect.StructType, msgspec.inspect.type_info(strict[name]))  # a Struct's info
        for field in info.fields:
            types = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
            floor = next((ge for t in types if (ge := getattr(t, "ge", None)) == 0), None)
            documented = (schema.properties or {}).get(field.encode_name)
            if floor is not None and isinstance(documented, Schema) and documented.minimum is None:
                documented.minimum = floor
    return app


def _subclasses(cls: type[T]) -> set[type[T]]:
    found = set(cls.__subclasses__())
    return found.union(*(_subclasses(sub) for sub in found)) if found else found


def problem(status: int, detail: str, *, type_: str | None = None, **extra: Any) -> ProblemDetailsException:
    """A problem-details exception with the standard reason phrase as title; ``extra`` become members."""
    return ProblemDetailsException(
        status_code=status,
        title=HTTPStatus(status).phrase,
        detail=detail,
        type_=type_,
        extra=extra or None,
    )


def not_found(detail: str) -> ProblemDetailsException:
    return problem(404, detail)


def found(view: Any, as_type: type[T], missing: str) -> T:
    """A use case's view (None: there is none) as the response type, or a 404 problem saying ``missing``."""
    if view is None:
        raise not_found(missing)
    return msgspec.convert(view, as_type)


def bad_request(detail: str, **extra: Any) -> ProblemDetailsException:
    return problem(400, detail, **extra)


def conflict(detail: str, **extra: Any) -> ProblemDetailsException:
    return problem(409, detail, **extra)


def problem_config(
    errors: Mapping[type[E], Callable[[E], ProblemDetailsException]] | None = None,
    plugins: Sequence[InitPluginProtocol] = (),
) -> dict[str, Any]:
    """Keyword arguments for ``Litestar(...)``: problem details for every HTTP error and every crash,
    and a request body limit. Validation errors (unknown fields, wrong types, malformed JSON) arrive as
    Litestar's 400 ``ValidationException``/``ClientException`` and leave as problem details with an
    ``errors`` list. ``errors`` maps an app's own exceptions (its use cases' domain errors) to problems:
    the one place where they become HTTP. ``plugins``: the app's other Litestar plugins (e.g. tracing)."""
    plugin = ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=True,
            exception_to_problem_detail_map={HTTPException: _from_http_exception, **(errors or {})},
        )
    )
    return {
        "plugins": [plugin, *plugins],
        # Before Litestar's own limit below: it drains an oversized body, so the client reads the 413.
        # BodyLimit is plain ASGI with its own dict types; Litestar's scopes are the same dicts, typed as TypedDicts.
        "middleware": [DefineMiddleware(BodyLimit, limit=MAX_BODY_BYTES)],  # type: ignore[arg-type]
        # run_service configures logging once per process; Litestar's default config would add a second
        # root handler and print every line twice.
        "logging_config": None,
        "request_max_body_size": MAX_BODY_BYTES,
        "exception_handlers": {Exception: _unexpected_error},
        "before_send": [_allow_every_method],
    }


async def _allow_every_method(message: Message, scope: Scope) -> None:
    """The ``Allow`` of an OPTIONS answer lists every method of its path. Litestar 2's own OPTIONS handler of a
    path served by several handlers (``GET /orders`` and ``POST /orders``) lists only the methods of the handler
    registered first (litestar-org/litestar#4169, fixed in 3.0): an OPTIONS /orders said ``GET, OPTIONS``. The
    route the request matched knows them all."""
    if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
        return
    template = scope.get("path_template")
    app = scope.get("app")
    routes = [r for r in getattr(app, "routes", ()) if isinstance(r, HTTPRoute) and r.path_format == template]
    headers = MutableScopeHeaders.from_message(message)
    if len(routes) == 1 and "allow" in headers:
        headers["allow"] = ", ".join(sorted(routes[0].methods))


def _from_http_exception(exc: HTTPException) -> ProblemDetailsException:
    if isinstance(exc, ProblemDetailsException):
        return exc
    status = exc.status_code
    extra: dict[str, Any] = {}
    if isinstance(exc.extra, list) and exc.extra:
        extra["errors"] = exc.extra  # Litestar's validation errors: [{"message", "key", "source"}]
    elif isinstance(exc.extra, dict):
        extra.update(exc.extra)
    return ProblemDetailsException(
        status_code=status,
        title=HTTPStatus(status).phrase,
        detail=exc.detail,
        headers=exc.headers,
        extra=extra or None,
    )


def _unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # A bug or an outage, not the client's fault: log the traceback, reveal nothing about internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "unexpected error; see the service log").to_response(request)
