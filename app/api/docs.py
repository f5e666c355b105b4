"""Swagger UI at ``/docs`` served from the installed ``swagger-ui-bundle-v2`` package, so the API
documentation works on a server with no internet access (FastAPI's default loads it from a CDN)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/_docs-assets"


def install_docs(app: FastAPI, *, title: str) -> None:
    app.openapi_url = "/openapi.json"
    app.docs_url = None
    app.redoc_url = None
    app.openapi_schema = None
    app.setup()  # adds /openapi.json
    app.mount(ASSETS_PATH, StaticFiles(directory=Path(swagger_ui_bundle.swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} — API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            # no validator badge: it is an image from validator.swagger.io (the page's policy refuses it)
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        )
