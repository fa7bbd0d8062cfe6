"""DESIGN.md's boundaries, pinned: ``core`` imports no service; ``canvas``, ``identity`` and
``commons`` never import one another (nor ``app``/``cli``); ``dap`` reads Canvas only through
``canvas.export`` and identity only through ``identity.clients``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lmsauth

PACKAGE = Path(lmsauth.__file__).parent
SHARED = ("lmsauth.core", "lmsauth.settings", "lmsauth.command_support")


def imported_modules(folder: str, package: Path = PACKAGE) -> set[str]:
    """Every ``lmsauth`` module imported anywhere under ``folder``, with ``from lmsauth import x``
    read as ``lmsauth.x``."""
    found: set[str] = set()
    for path in (package / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "lmsauth":
                found.update(f"lmsauth.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("lmsauth")}


def outside(folder: str, allowed: tuple[str, ...], package: Path = PACKAGE) -> set[str]:
    return {name for name in imported_modules(folder, package) if not name.startswith(allowed)}


def test_core_imports_no_service() -> None:
    assert outside("core", ("lmsauth.core",)) == set()


@pytest.mark.parametrize("service", ["canvas", "identity", "commons"])
def test_services_import_only_themselves_and_core(service: str) -> None:
    assert outside(service, (f"lmsauth.{service}", *SHARED)) == set()


def test_dap_uses_only_the_two_interfaces() -> None:
    allowed = ("lmsauth.dap", "lmsauth.canvas.export", "lmsauth.identity.clients", *SHARED)
    assert outside("dap", allowed) == set()
    assert {"lmsauth.canvas.export", "lmsauth.identity.clients"} <= imported_modules("dap")


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    """The scanner itself: forbidden imports in a service folder are reported."""
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "x.py").write_text(
        "from lmsauth import cli\nfrom lmsauth.canvas.models import User\nimport lmsauth.core.clock\n"
    )
    assert outside("svc", SHARED, tmp_path) == {"lmsauth.cli", "lmsauth.canvas.models"}
