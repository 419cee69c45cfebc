"""``/docs`` (Swagger UI) and ``/redoc`` served from ``app/static/``: they work offline.

FastAPI's defaults load the UI from a CDN, which leaves a blank page in an air-gapped cluster.
The validator badge is switched off for the same reason (it calls validator.swagger.io).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

STATIC = "/static"


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{STATIC}/redoc.standalone.js",
        redoc_favicon_url=f"{STATIC}/favicon-32x32.png",
        with_google_fonts=False,
    )
