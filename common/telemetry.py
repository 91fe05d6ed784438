"""Traces (OpenTelemetry), off unless the standard variables turn them on: ``OTEL_TRACES_EXPORTER`` (``otlp`` or
``console``), or an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, HTTP
and protobuf); ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keep them off. ``OTEL_SERVICE_NAME``
names the app (default: its app ID); the exporter reads its other ``OTEL_EXPORTER_OTLP_*`` settings itself.

What one order's trace holds: the REST request (Litestar's OpenTelemetry middleware), the start of its saga (the
order-api hands the trace to the workflow engine, which gives it to every activity as ``parentTraceContext``),
each activity (the Dapr SDK's own span, on the app that runs it), and the SQL each of them runs (``common.fastdb``'s
span per statement).
When tracing is off nothing here is installed, and the SDK's activity spans go to OpenTelemetry's no-op tracer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from litestar.plugins import InitPluginProtocol

log = logging.getLogger(__name__)

_on = False


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(exporter) or bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure(app_id: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the tracer provider and its exporter for this process if the environment asks for traces;
    whether it did. Call once, at start, before the app and its database engines are made."""
    global _on
    env = os.environ if env is None else env
    if not wanted(env):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    kind = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if kind == "console":
        exporter = ConsoleSpanExporter()
    elif kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        log.warning("OTEL_TRACES_EXPORTER=%s is not one this app knows (otlp, console, none): traces stay off", kind)
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or app_id}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # The apps' statements run on asyncpg (common.fastdb), which makes a span per statement while traces are on.
    # SQLAlchemy engines made from now on (the migrations' at start) trace their SQL too: the instrumentation wraps
    # sqlalchemy's create functions.
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Its declared range stops below SQLAlchemy 2.1, which it traces all the same (its engine events are
    # unchanged; tests/e2e/test_traces.py checks the SQL spans), so the check is skipped.
    SQLAlchemyInstrumentor().instrument(skip_dep_check=True)
    _on = True
    log.info("traces on: exported with %s", kind)
    return True


def enabled() -> bool:
    return _on


def litestar_plugins() -> list[InitPluginProtocol]:
    """The plugins that trace each REST request, when traces are on."""
    if not _on:
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    return [OpenTelemetryPlugin(OpenTelemetryConfig())]


def current_traceparent() -> dict[str, str]:
    """The W3C headers (``traceparent``, ``tracestate``) of the current span, or nothing outside one."""
    carrier: dict[str, Any] = {}
    if _on and trace.get_current_span().get_span_context().is_valid:
        TraceContextTextMapPropagator().inject(carrier)
    return carrier


def trace_id(traceparent: str | None) -> str | None:
    """The trace ID of a W3C ``traceparent``, as tracing back ends show it (32 hex digits)."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None
