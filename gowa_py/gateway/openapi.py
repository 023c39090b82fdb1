"""``/openapi.json`` generated from the live route table and the msgspec structs; ``/docs``.

Nothing here is written by hand per route: the paths and methods come from the aiohttp
router, the inputs of GoWA operations from their ``OpRoute`` and struct (query parameters
for GET, a JSON or multipart body for POST), the bodies of the session routes from
``gowa_py.models``. A route added anywhere shows up here without touching this file.
``/docs`` renders it with swagger-ui-dist from ``dashboard/node_modules`` (no CDN).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from aiohttp import web

from gowa_py import __version__, models
from gowa_py.gateway import assets
from gowa_py.gateway.errors import ApiError
from gowa_py.gateway.gowa.operation import OpRoute
from gowa_py.gateway.gowa.routing import OPERATION_ROUTES
from gowa_py.protocol import ErrorCode

routes = web.RouteTableDef()

SWAGGER_DIR = assets.dashboard_dir() / "node_modules" / "swagger-ui-dist"
SWAGGER_FILES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui-standalone-preset.js": "application/javascript",
}
REF = "#/components/schemas/{name}"
PREFIX = "/api/{session_id}"
# Bodies of the non-GoWA routes (session management, GoWA v9 device routes).
BODIES: dict[tuple[str, str], type[msgspec.Struct]] = {
    ("POST", "/api/sessions"): models.CreateSession,
    ("POST", "/api/keys"): models.CreateKey,
    ("PATCH", "/api/sessions/{session_id}"): models.PatchSession,
    ("POST", "/devices"): models.AddDevice,
    ("PATCH", "/devices/{device_id}/webhook"): models.DeviceWebhook,
}
ENVELOPE = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "example": "SUCCESS"},
        "message": {"type": "string"},
        "results": {},
    },
}


def error_responses() -> dict[str, dict[str, Any]]:
    """The error answers by HTTP status, each listing its codes and what they mean, built
    from :class:`ErrorCode` so a new code is documented by being added there."""
    lines: dict[int, list[str]] = {}
    for code in sorted(ErrorCode, key=lambda code: code.status):
        lines.setdefault(code.status, []).append(f"`{code}`: {code.meaning}")
    return {
        str(status): {
            "description": "\n\n".join(text),
            "content": {"application/json": {"schema": ENVELOPE}},
        }
        for status, text in lines.items()
    }


ERRORS = error_responses()
ERROR_REF = "#/components/responses/Error{status}"


def _components() -> tuple[dict[type, dict[str, Any]], dict[str, Any]]:
    types = [route.op for route in OPERATION_ROUTES] + list(set(BODIES.values()))
    schemas, components = msgspec.json.schema_components(types, ref_template=REF)
    for schema in components.values():
        _strip_tag(schema)
    by_type = {kind: components[_name(schema)] for kind, schema in zip(types, schemas, strict=True)}
    return by_type, components


def _name(schema: dict[str, Any]) -> str:
    return schema["$ref"].rsplit("/", 1)[-1]


def _strip_tag(schema: dict[str, Any]) -> None:
    """Operations are tagged for IPC (``op``); HTTP clients never send that field."""
    schema.get("properties", {}).pop("op", None)
    if "required" in schema:
        schema["required"] = [name for name in schema["required"] if name != "op"]
        if not schema["required"]:
            del schema["required"]


def _binary(prop: dict[str, Any]) -> dict[str, Any]:
    if prop.get("$ref", "").endswith("/Upload") or any(
        item.get("$ref", "").endswith("/Upload") for item in prop.get("anyOf", [])
    ):
        return {"type": "string", "format": "binary"}
    return prop


def _operation(route: OpRoute, schema: dict[str, Any], path: str) -> dict[str, Any]:
    path_params = set(re.findall(r"{(\w+)}", path))
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    operation: dict[str, Any] = {
        "tags": [route.tag],
        "summary": route.summary,
        "operationId": route.op.__name__ + ("ForSession" if path.startswith(PREFIX) else ""),
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in sorted(path_params)
        ],
    }
    if not path.startswith(PREFIX):
        operation["parameters"].append(
            {
                "name": "X-Device-Id",
                "in": "header",
                "required": False,
                "description": "Session id (else ?device_id=, else `default`)",
                "schema": {"type": "string"},
            }
        )
    body_props = {k: v for k, v in properties.items() if k not in path_params}
    if route.body is None:
        operation["parameters"] += [
            {"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in body_props.items()
        ]
    elif body_props:
        if route.body == "form":
            content_type = "multipart/form-data"
            props = {name: _binary(prop) for name, prop in body_props.items()}
        else:
            content_type = "application/json"
            props = body_props
        body_schema: dict[str, Any] = {"type": "object", "properties": props}
        needed = sorted(required & set(body_props))
        if needed:
            body_schema["required"] = needed
        operation["requestBody"] = {
            "required": bool(needed),
            "content": {content_type: {"schema": body_schema}},
        }
    return operation


def _responses(ok: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": ok, "content": {"application/json": {"schema": ENVELOPE}}}
    }
    responses.update({status: {"$ref": ERROR_REF.format(status=status)} for status in ERRORS})
    return responses


def build(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of everything ``app`` routes."""
    op_schemas, components = _components()
    by_path = {(route.method, route.path): route for route in OPERATION_ROUTES}
    paths: dict[str, dict[str, Any]] = {}
    for resource in app.router.resources():
        path = resource.canonical
        for route in resource:
            method = route.method.upper()
            if method in ("HEAD", "*"):
                continue
            gowa_path = path[len(PREFIX) :] if path.startswith(PREFIX + "/") else path
            op_route = by_path.get((method, gowa_path))
            if op_route is not None:
                operation = _operation(op_route, op_schemas[op_route.op], path)
                operation["responses"] = _responses("GoWA envelope; `results` as in GoWA v9")
            else:
                operation = _plain(method, path, route.handler)
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gowa-py",
            "version": __version__,
            "description": (
                "Multi-session WhatsApp REST gateway compatible with GoWA v9. Every GoWA route "
                "is served as `/api/{session_id}/<path>` and unprefixed (`X-Device-Id` header, "
                "else `device_id` query parameter, else the session `default`). Responses use "
                'the envelope `{"code", "message", "results"}`.'
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "responses": {f"Error{status}": response for status, response in ERRORS.items()},
        },
    }


def _plain(method: str, path: str, handler: Any) -> dict[str, Any]:
    doc = (handler.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    name = getattr(handler, "__name__", "handler")
    operation: dict[str, Any] = {
        "summary": doc or name.replace("_", " "),
        "operationId": f"{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}",
        "tags": [_tag(path)],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", path)
        ],
        "responses": _responses("Success"),
    }
    body = BODIES.get((method, path))
    if body is not None:
        operation["requestBody"] = {
            "content": {"application/json": {"schema": {"$ref": REF.format(name=body.__name__)}}}
        }
    return operation


def _tag(path: str) -> str:
    parts = [part for part in path.split("/") if part and not part.startswith("{")]
    if parts[:1] == ["api"] and len(parts) > 1:
        return "sessions" if parts[1] == "sessions" else parts[1]
    return parts[0] if parts else "ops"


@routes.get("/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(build(request.app))


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gowa-py API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script></body></html>
"""
DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#docs",
  deepLinking: true, docExpansion: "none", tryItOutEnabled: false});
"""


@routes.get("/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html")


@routes.get("/docs/assets/{name}")
async def docs_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "init.js":
        return web.Response(text=DOCS_INIT, content_type="application/javascript")
    content_type = SWAGGER_FILES.get(name)
    path = SWAGGER_DIR / name
    if content_type is None or not path.is_file():
        raise ApiError(
            ErrorCode.NOT_FOUND, f"docs asset {name!r} is missing (run `make dashboard-deps`)"
        )
    response = web.FileResponse(path)
    response.content_type = content_type
    return response
