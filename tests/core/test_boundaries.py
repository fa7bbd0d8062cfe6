"""DESIGN.md's boundaries, pinned: ``core`` imports no service; ``canvas``, ``identity`` and
``commons`` never import one another, nor the composition layer (``app``, ``cli``) or any other
root-level module but ``settings`` (what they share lives in ``core``); ``dap`` reads Canvas
only through ``canvas.export`` and identity only through ``identity.clients``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lmsauth

PACKAGE = Path(lmsauth.__file__).parent
# The only root-level modules a service may import.
SHARED = ("lmsauth.core", "lmsauth.settings")


def _absolute(node: ast.ImportFrom, package: list[str]) -> str:
    """``from ..x import y`` in package ``lmsauth.canvas`` names ``lmsauth.x``."""
    if node.level == 0:
        return node.module or ""
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(folder: str, package: Path = PACKAGE) -> set[str]:
    """Every ``lmsauth`` module imported anywhere under ``folder``, relative imports resolved,
    with ``from lmsauth import x`` read as ``lmsauth.x``."""
    found: set[str] = set()
    for path in (package / folder).rglob("*.py"):
        in_package = ["lmsauth", *path.parent.relative_to(package).parts]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = _absolute(node, in_package)
                found.add(module)
                if module == "lmsauth" or node.module is None:
                    found.update(f"{module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("lmsauth.")}


def _within(name: str, allowed: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in allowed)


def outside(folder: str, allowed: tuple[str, ...], package: Path = PACKAGE) -> set[str]:
    return {name for name in imported_modules(folder, package) if not _within(name, allowed)}


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
    """The scanner itself: forbidden imports in a service folder are reported: another service,
    the composition layer, any other root-level module, however the import is spelled."""
    (tmp_path / "svc" / "sub").mkdir(parents=True)
    (tmp_path / "svc" / "x.py").write_text(
        "from lmsauth import cli\n"
        "from lmsauth.canvas.models import User\n"
        "import lmsauth.app\n"
        "from lmsauth.migrations import upgrade\n"
        "from lmsauth.settings_extra import X\n"
        "from .. import seed\n"
        "def later():\n"
        "    from lmsauth.command_support import run_in_transaction\n"
        # Allowed: core, settings, the service itself.
        "import lmsauth.core.clock\n"
        "from lmsauth import settings\n"
        "from lmsauth.core.commands import run_in_transaction\n"
        "from . import sub\n"
    )
    (tmp_path / "svc" / "sub" / "y.py").write_text("from ...models import Base\nfrom ..x import later\n")
    assert outside("svc", ("lmsauth.svc", *SHARED), tmp_path) == {
        "lmsauth.cli",
        "lmsauth.canvas.models",
        "lmsauth.app",
        "lmsauth.migrations",
        "lmsauth.settings_extra",
        "lmsauth.seed",
        "lmsauth.command_support",
        "lmsauth.models",
    }
