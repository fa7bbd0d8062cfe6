"""Scopes on developer keys and tokens, and Canvas's enforcement of ``url:`` scopes (spec 3.4, 7.4)."""

from __future__ import annotations

import re
from functools import lru_cache

USERINFO = "/auth/userinfo"
SPECIAL_SCOPES = frozenset({USERINFO, "cd2"})
_URL_SCOPE = re.compile(r"^url:(GET|POST|PUT|PATCH|DELETE)\|(/api/[A-Za-z0-9_/:*().\-]*)$")
_IMS_SCOPE = re.compile(r"^https://(purl\.imsglobal\.org|canvas\.instructure\.com)/[\w./:-]+$")


def parse(raw: str | None) -> list[str]:
    """Canvas splits the ``scope`` parameter on whitespace."""
    return raw.split() if raw else []


def is_known(scope: str) -> bool:
    """Whether ``scope`` has the form of a Canvas scope.

    Canvas checks against every scope its routes produce (``TokenScopes.all_scopes``); this
    server implements few routes but must accept keys seeded with any real Canvas scope, so
    it checks the form: ``url:<VERB>|/api/...``, the special scopes, and LTI/IMS scopes.
    """
    return scope in SPECIAL_SCOPES or bool(_URL_SCOPE.match(scope) or _IMS_SCOPE.match(scope))


def is_userinfo(scopes: list[str]) -> bool:
    """Canvas's ``scopes_match?``: every scope ends in ``userinfo`` (regex ``(^|/)userinfo$``)."""
    return bool(scopes) and all(re.search(r"(^|/)userinfo$", scope) for scope in scopes)


def not_granted(requested: list[str], allowed: list[str]) -> list[str] | None:
    """The requested scopes a scoped key does not allow; ``None`` when the request is valid.

    An empty request is invalid on a key that requires scopes (spec 3.2 step 6).
    """
    missing = [scope for scope in requested if scope not in allowed]
    if requested and not missing:
        return None
    return missing


def english_list(items: list[str]) -> str:
    """Rails ``to_sentence``: ``a``, ``a and b``, ``a, b, and c``."""
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + ", and " + items[-1]


def invalid_scope_description(missing: list[str]) -> str:
    return (
        "A requested scope is invalid, unknown, malformed, or exceeds the scope granted by the "
        f"resource owner. The following scopes were requested, but not granted: {english_list(missing)}"
    )


@lru_cache(maxsize=4096)
def _pattern(path: str) -> re.Pattern[str]:
    """Canvas's route-to-regex: ``:param`` → ``[^/]+``, ``*glob`` → ``.+``, ``( … )`` optional."""
    out = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == ":" or char == "*":
            match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", path[i + 1 :])
            name_len = match.end() if match else 0
            out.append("[^/]+" if char == ":" else ".+")
            i += 1 + name_len
            continue
        if char == "(":
            out.append("(?:")
        elif char == ")":
            out.append(")?")
        else:
            out.append(re.escape(char))
        i += 1
    # Canvas appends ``(?:\.[^/]+|)``: any format suffix, not only lowercase ones.
    return re.compile("^" + "".join(out) + r"(?:\.[^/]+)?$")


def allows(scopes: list[str], method: str, path: str) -> bool:
    """Whether a scoped token may call ``method path`` (HEAD counts as GET)."""
    if path == "/login/oauth2/token":
        return True
    verb = "GET" if method.upper() == "HEAD" else method.upper()
    for scope in scopes:
        match = _URL_SCOPE.match(scope)
        if match and match.group(1) == verb and _pattern(match.group(2)).match(path):
            return True
    return False
