"""DESIGN.md's boundaries, pinned: ``identity`` imports no other service, and ``dap`` reads
Canvas only through ``canvas.export`` and identity only through ``identity.clients``."""

from __future__ import annotations

import ast
from pathlib import Path

import lmsauth

PACKAGE = Path(lmsauth.__file__).parent
SHARED = ("lmsauth.core", "lmsauth.settings", "lmsauth.migrations")


def imported_modules(folder: str) -> set[str]:
    found: set[str] = set()
    for path in (PACKAGE / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("lmsauth")}


def test_identity_imports_only_itself_and_core() -> None:
    outside = {
        name for name in imported_modules("identity") if not name.startswith(("lmsauth.identity", *SHARED))
    }
    assert outside == set()


def test_dap_uses_only_the_two_interfaces() -> None:
    allowed = ("lmsauth.dap", "lmsauth.canvas.export", "lmsauth.identity.clients", *SHARED)
    outside = {name for name in imported_modules("dap") if not name.startswith(allowed)}
    assert outside == set()
    assert {"lmsauth.canvas.export", "lmsauth.identity.clients"} <= imported_modules("dap")


def test_canvas_export_imports_no_other_service() -> None:
    tree = ast.parse((PACKAGE / "canvas" / "export.py").read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in modules if m.startswith(("lmsauth.dap", "lmsauth.identity", "lmsauth.commons"))}
