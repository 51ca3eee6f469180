"""mkdocs hook: render the committed OpenAPI spec as a Markdown reference page.

The server's spec is committed at ``frontend/openapi.json`` (the UI's client is generated
from it, and a test fails when it is stale), so the docs render that same file: no network,
no JavaScript viewer, no CDN. A page opts in by containing the marker below.
"""

from __future__ import annotations

import json
import os
from typing import Any

MARKER = "<!-- stemtrace:openapi -->"
SPEC_PATH = os.path.join("frontend", "openapi.json")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def _cell(text: object) -> str:
    """Text safe inside one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return "schema-" + "".join(c if c.isalnum() else "-" for c in name.lower())


def type_of(schema: dict[str, Any] | bool | None) -> str:
    """A short, human type for a JSON schema: ``string``, ``array of Task``, ``integer or null``."""
    if schema is None or isinstance(schema, bool):
        return "any"
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{_anchor(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(dict.fromkeys(type_of(s) for s in schema[key]))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_of(schema["allOf"][0])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(type_of({**schema, "type": k}) for k in kind)
    if kind == "array":
        return "array of " + type_of(schema.get("items"))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of " + type_of(schema["additionalProperties"])
    text = str(kind) if kind else "any"
    if schema.get("format"):
        text += f" ({schema['format']})"
    return text


def _body_type(content: dict[str, Any] | None) -> str:
    if not content:
        return ""
    parts = []
    for media, spec in content.items():
        schema = spec.get("schema")
        parts.append(f"`{media}`" + (f": {type_of(schema)}" if schema else ""))
    return "; ".join(parts)


def _operation(path: str, method: str, op: dict[str, Any], shared: list[dict[str, Any]]) -> list[str]:
    out = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        out += [f"**{op['summary'].strip()}**", ""]
    if op.get("description"):
        out += [op["description"].strip(), ""]
    params = [*shared, *op.get("parameters", [])]
    if params:
        out += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            desc = p.get("description") or p.get("schema", {}).get("description", "")
            default = p.get("schema", {}).get("default")
            if default is not None:
                desc = f"{desc} (default `{json.dumps(default)}`)".strip()
            out.append(
                f"| `{p['name']}` | {p.get('in', '')} | {_cell(type_of(p.get('schema')))} "
                f"| {'yes' if p.get('required') else 'no'} | {_cell(desc)} |"
            )
        out.append("")
    body = op.get("requestBody")
    if body:
        out += [f"Request body: {_body_type(body.get('content'))}", ""]
    responses = op.get("responses", {})
    if responses:
        out += ["| status | meaning | body |", "|---|---|---|"]
        for status, resp in responses.items():
            meaning, body = _cell(resp.get("description", "")), _cell(_body_type(resp.get("content")))
            out.append(f"| {status} | {meaning} | {body} |")
        out.append("")
    return out


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    out = [f"### {name} {{ #{_anchor(name)} }}", ""]
    if schema.get("description"):
        out += [schema["description"].strip(), ""]
    props = schema.get("properties")
    if props:
        required = set(schema.get("required", []))
        out += ["| field | type | required | description |", "|---|---|---|---|"]
        for field, spec in props.items():
            out.append(
                f"| `{field}` | {_cell(type_of(spec))} | {'yes' if field in required else 'no'} "
                f"| {_cell(spec.get('description', ''))} |"
            )
        out.append("")
    else:
        out += [f"Type: {type_of(schema)}", ""]
    return out


def _group_of(path: str) -> str:
    """An untagged operation's section: the resource after ``/api/`` (``/api/tasks/{id}`` → tasks)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return parts[1]
    return parts[0] if parts else "other"


def render(spec: dict[str, Any]) -> str:
    """The whole reference: operations grouped by tag, then every component schema."""
    info = spec.get("info", {})
    out = [
        f"Generated from `frontend/openapi.json`: {info.get('title', 'API')} "
        f"version {info.get('version', '?')}, OpenAPI {spec.get('openapi', '?')}.",
        "",
    ]
    by_tag: dict[str, list[str]] = {}
    for path, item in spec.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            tag = (op.get("tags") or [_group_of(path)])[0]
            by_tag.setdefault(tag, []).extend(_operation(path, method, op, shared))
    for tag, lines in by_tag.items():
        out += [f"## {tag.capitalize()}", "", *lines]
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        out += ["## Schemas", ""]
        for name in sorted(schemas):
            out += _schema(name, schemas[name])
    return "\n".join(out).rstrip() + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    root = os.path.dirname(os.path.abspath(config["config_file_path"]))
    path = os.path.join(root, SPEC_PATH)
    try:
        with open(path, encoding="utf-8") as fh:
            spec = json.load(fh)
    except (OSError, ValueError) as exc:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"cannot render the API reference from {SPEC_PATH}: {exc}") from exc
    return markdown.replace(MARKER, render(spec))
