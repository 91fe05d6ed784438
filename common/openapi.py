"""The OpenAPI document and its docs page for every app, offline: Swagger UI from files shipped in this package
(``openapi_assets/``, served at ``/schema/assets/``), never from a CDN. ``/schema`` and ``/schema/swagger`` show
the page; ``/schema/openapi.json`` and ``/schema/openapi.yaml`` are the document."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

ASSETS = Path(__file__).with_name("openapi_assets")
ASSETS_PATH = "/schema/assets"
DOCS_PATH = "/schema/swagger"
# Litestar's default favicon is an image on a CDN; a data: URL keeps the page off the network.
_FAVICON = "<link rel='icon' href='data:,'>"


def openapi_config(title: str, description: str | None = None) -> OpenAPIConfig:
    """The OpenAPI settings of an app: its document and a Swagger UI page whose assets the app serves itself."""
    return OpenAPIConfig(
        title=title,
        version="0.1.0",
        description=description,
        render_plugins=[
            SwaggerRenderPlugin(
                js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                css_url=f"{ASSETS_PATH}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
                path="/swagger",
                favicon=_FAVICON,
            )
        ],
    )


def docs_assets_router() -> Router:
    """``/schema/assets/*``: the docs page's script and style, from this package (cached for a day)."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[ASSETS],
        name="openapi-assets",
        cache_control=CacheControlHeader(max_age=86_400),
    )
