"""The layers of DESIGN.md, checked on the source: services hold the rules and know neither front door;
pages and the API are two doors onto services, and neither goes through the other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# what each package may not import (a name and everything under it)
FORBIDDEN = {
    "services": ("nicegui", "fastapi", "starlette", "pages", "app.api", "app.schemas"),
    "pages": ("app.api", "app.main"),
    "app/api": ("pages", "nicegui"),
}
# of the shell, services see only the tables, the settings and the database helpers
SERVICES_MAY_IMPORT_FROM_APP = ("app.models", "app.config", "app.db")


def imported_names(tree: ast.AST) -> set[str]:
    """Every module an ``import`` or ``from … import`` names, anywhere in the file (also inside functions);
    ``from app import api`` counts as ``app.api``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(folder: str) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in sorted(imported_names(tree)):
            banned = any(is_under(name, package) for package in FORBIDDEN[folder])
            if folder == "services" and is_under(name, "app") and name != "app":
                banned = banned or not any(is_under(name, ok) for ok in SERVICES_MAY_IMPORT_FROM_APP)
            if banned:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_layer_imports(folder: str) -> None:
    assert (ROOT / folder).is_dir()
    assert violations(folder) == []


def test_the_check_sees_imports_anywhere() -> None:
    source = "import nicegui.ui\ndef f():\n    from app import api\n    from app.schemas import X\n"
    names = imported_names(ast.parse(source))
    assert {"nicegui.ui", "app.api", "app.schemas"} <= names
    assert is_under("fastapi.responses", "fastapi") and not is_under("fastapi_extra", "fastapi")
