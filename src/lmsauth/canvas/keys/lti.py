"""LTI developer keys (spec lti13.md 1): the tool's configuration kept on the key, and the tool
installed from it in the account or a course, whose deployment id tools list in their own
configuration.

The configuration is Canvas's ``Lti::ToolConfiguration`` JSON (spec 1.1): ``title``,
``oidc_initiation_url``, ``target_link_uri``, ``scopes``, ``custom_fields``, the tool's
``public_jwk`` or ``public_jwk_url``, and one ``extensions`` entry for Canvas with the privacy
level and the placements, each with its ``message_type``. The redirect URIs are the key's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from lmsauth.canvas.admin import AdminError, root_account
from lmsauth.canvas.courses.models import Course
from lmsauth.canvas.keys import service
from lmsauth.canvas.models import Account, DeveloperKey
from lmsauth.canvas.tool_models import PRIVACY_LEVELS, ExternalTool, seal
from lmsauth.core import secrets

RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"
AGS_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://canvas.instructure.com/lti-ags/progress/scope/show",
)
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
LTI_SCOPES = (
    *AGS_SCOPES[:4],
    NRPS_SCOPE,
    AGS_SCOPES[4],
    "https://canvas.instructure.com/lti/public_jwk/scope/update",
    "https://canvas.instructure.com/lti/account_lookup/scope/show",
)
# The placements a key may name, and the message each sends unless the configuration says
# otherwise: the selection placements open deep linking (spec 3.4).
PLACEMENTS: dict[str, str] = {
    "course_navigation": RESOURCE_LINK,
    "link_selection": DEEP_LINKING,
    "assignment_selection": DEEP_LINKING,
    "course_assignments_menu": DEEP_LINKING,
    "module_menu_modal": DEEP_LINKING,
    "editor_button": DEEP_LINKING,
    "homework_submission": DEEP_LINKING,
}
PLACEMENT_TEXT = {
    "course_navigation": "{title}",
    "link_selection": "Add a link from {title}",
    "assignment_selection": "Add an assignment from {title}",
}
PLATFORM = "canvas.instructure.com"


def _absolute_url(what: str, url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 4096:
        raise AdminError(f"{what} must be an absolute http(s) URL: {url}")
    return url


def check_public_jwk(jwk: Any) -> dict[str, Any]:
    """The tool's public key: an RSA JWK with ``alg`` and ``use``, as Canvas requires ("The JWK
    must include an alg and use", spec 1.1). A JWK Set of one key is taken as that key."""
    if isinstance(jwk, dict) and isinstance(jwk.get("keys"), list) and len(jwk["keys"]) == 1:
        jwk = jwk["keys"][0]
    if not isinstance(jwk, dict):
        raise AdminError("the public JWK must be a JSON object")
    missing = [name for name in ("kty", "e", "n", "alg", "use") if not isinstance(jwk.get(name), str)]
    if missing:
        raise AdminError(f"the public JWK lacks {', '.join(missing)}")
    if jwk["kty"] != "RSA" or jwk["alg"] != "RS256":
        raise AdminError("the public JWK must be an RSA key for RS256")
    if "d" in jwk:
        raise AdminError("the public JWK holds a private key")
    return dict(jwk)


def check_tool_configuration(config: Any) -> dict[str, Any]:
    """A tool configuration (from the API, a seed file or ``build_tool_configuration``),
    checked: the URLs, the scopes, the privacy level and the placements."""
    if not isinstance(config, dict):
        raise AdminError("tool_configuration must be a JSON object")
    tidy = dict(config)
    for field in ("oidc_initiation_url", "target_link_uri"):
        if not isinstance(tidy.get(field), str):
            raise AdminError(f"tool_configuration.{field} is required")
        tidy[field] = _absolute_url(field, tidy[field])
    scopes = tidy.get("scopes", [])
    if not isinstance(scopes, list) or any(scope not in LTI_SCOPES for scope in scopes):
        raise AdminError(f"tool_configuration.scopes may hold only: {', '.join(LTI_SCOPES)}")
    custom = tidy.get("custom_fields", {})
    if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
        raise AdminError("tool_configuration.custom_fields must map names to strings")
    if tidy.get("public_jwk") is not None:
        tidy["public_jwk"] = check_public_jwk(tidy["public_jwk"])
    if tidy.get("public_jwk_url") is not None:
        tidy["public_jwk_url"] = _absolute_url("public_jwk_url", str(tidy["public_jwk_url"]))
    if tidy.get("public_jwk") is None and tidy.get("public_jwk_url") is None:
        raise AdminError("a tool needs its public JWK or the URL of its JWK set")
    extensions = tidy.get("extensions", [])
    if not isinstance(extensions, list) or not all(isinstance(e, dict) for e in extensions):
        raise AdminError("tool_configuration.extensions must be a list of objects")
    for extension in extensions:
        if extension.get("privacy_level", "anonymous") not in PRIVACY_LEVELS:
            raise AdminError(f"privacy_level must be one of {', '.join(PRIVACY_LEVELS)}")
        placements = (extension.get("settings") or {}).get("placements", [])
        if not isinstance(placements, list):
            raise AdminError("settings.placements must be a list")
        for placement in placements:
            name = placement.get("placement") if isinstance(placement, dict) else None
            if name not in PLACEMENTS:
                raise AdminError(f"unknown placement {name!r}; known: {', '.join(PLACEMENTS)}")
            kind = placement.get("message_type", PLACEMENTS[name])
            if kind not in (RESOURCE_LINK, DEEP_LINKING):
                raise AdminError(f"placement {name}: message_type must be {RESOURCE_LINK} or {DEEP_LINKING}")
            if placement.get("target_link_uri") is not None:
                _absolute_url(f"placement {name} target_link_uri", str(placement["target_link_uri"]))
    return tidy


def build_tool_configuration(
    *,
    title: str,
    initiation_url: str,
    target_link_uri: str,
    public_jwk: dict[str, Any] | None,
    public_jwk_url: str | None,
    scopes: list[str],
    placements: list[str],
    custom_fields: dict[str, str],
    privacy_level: str,
) -> dict[str, Any]:
    """The configuration the CLI's options describe, in Canvas's JSON shape (spec 1.1)."""
    return check_tool_configuration(
        {
            "title": title,
            "oidc_initiation_url": initiation_url,
            "target_link_uri": target_link_uri,
            "scopes": list(dict.fromkeys(scopes)),
            "custom_fields": custom_fields,
            "public_jwk": public_jwk,
            "public_jwk_url": public_jwk_url,
            "extensions": [
                {
                    "platform": PLATFORM,
                    "privacy_level": privacy_level,
                    "settings": {
                        "placements": [
                            {
                                "placement": name,
                                "message_type": PLACEMENTS.get(name, RESOURCE_LINK),
                                "text": PLACEMENT_TEXT.get(name, "{title}").format(title=title),
                            }
                            for name in dict.fromkeys(placements)
                        ]
                    },
                }
            ],
        }
    )


@dataclass(frozen=True, slots=True)
class Placement:
    """One placement of a tool: where it shows, what it sends, where it goes."""

    name: str
    message_type: str
    target_link_uri: str
    text: str
    custom_fields: dict[str, str]


def _extension(config: dict[str, Any]) -> dict[str, Any]:
    for extension in config.get("extensions", []):
        if extension.get("platform", PLATFORM) == PLATFORM:
            return dict(extension)
    return {}


def privacy_level(config: dict[str, Any]) -> str:
    level = _extension(config).get("privacy_level", "anonymous")
    return level if level in PRIVACY_LEVELS else "anonymous"


def placements(config: dict[str, Any]) -> list[Placement]:
    """The configuration's enabled placements, each with its own or the tool's target."""
    found = []
    title = str(config.get("title") or "")
    for raw in (_extension(config).get("settings") or {}).get("placements", []):
        if raw.get("enabled") is False or raw.get("placement") not in PLACEMENTS:
            continue
        found.append(
            Placement(
                name=raw["placement"],
                message_type=raw.get("message_type", PLACEMENTS[raw["placement"]]),
                target_link_uri=raw.get("target_link_uri") or config["target_link_uri"],
                text=raw.get("text") or title,
                custom_fields=dict(raw.get("custom_fields") or {}),
            )
        )
    return found


def deployment_id(tool: ExternalTool, context_lti_id: str) -> str:
    """Canvas's ``ContextExternalTool#deployment_id`` (spec 1.2): the tool's id and the opaque
    id of the context it is installed in, at most 255 characters."""
    return f"{tool.id}:{context_lti_id}"[:255]


async def tool_deployment_id(session: AsyncSession, tool: ExternalTool) -> str:
    if tool.course_id is not None:
        course = await session.get(Course, tool.course_id)
        assert course is not None
        return deployment_id(tool, course.lti_context_id)
    account = await session.get(Account, tool.account_id)
    assert account is not None
    return deployment_id(tool, account.lti_context_id)


async def install(
    session: AsyncSession, key: DeveloperKey, secret_key: str, *, course_id: int | None = None
) -> ExternalTool:
    """Install the key's tool ("By Client ID") in the account or in the course ``course_id``."""
    config = key.tool_configuration or {}
    account = await root_account(session)
    if course_id is not None and await session.get(Course, course_id) is None:
        raise AdminError(f"no course with id {course_id}")
    tool = ExternalTool(
        account_id=account.id,
        course_id=course_id,
        name=str(config.get("title") or key.name),
        url=config["target_link_uri"],
        domain=urlsplit(config["target_link_uri"]).hostname,
        consumer_key=key.client_id,
        # An LTI 1.3 tool signs nothing with a shared secret; the column is LTI 1.1's.
        shared_secret_sealed=seal(secret_key, secrets.canvas_slug(32)),
        privacy_level=privacy_level(config),
        custom_fields=dict(config.get("custom_fields") or {}),
        lti_version="1.3",
        developer_key_id=key.id,
    )
    session.add(tool)
    await session.flush()
    return tool


async def save_lti_key(
    session: AsyncSession,
    *,
    name: str,
    redirect_uris: list[str],
    tool_configuration: dict[str, Any],
    secret_key: str,
) -> DeveloperKey:
    """A new LTI key, active and on in the root account, with its configuration's scopes."""
    config = check_tool_configuration(tool_configuration)
    if not redirect_uris:
        raise AdminError("at least one redirect URI is required")
    for uri in redirect_uris:
        _absolute_url("a redirect URI", uri)
    key, _secret = await service.save_developer_key(
        session,
        name=name,
        redirect_uris=redirect_uris,
        scopes=list(config.get("scopes", [])),
        secret_key=secret_key,
    )
    key.is_lti_key = True
    key.tool_configuration = config
    key.public_jwk = config.get("public_jwk")
    key.public_jwk_url = config.get("public_jwk_url")
    await session.flush()
    return key


def apply_configuration(key: DeveloperKey, config: dict[str, Any], *, scopes_given: bool) -> None:
    """Make ``key`` an LTI key with this (checked) configuration; its scopes are the
    configuration's unless the request set them too."""
    key.is_lti_key = True
    key.tool_configuration = config
    key.public_jwk = config.get("public_jwk")
    key.public_jwk_url = config.get("public_jwk_url")
    if not scopes_given:
        key.scopes = list(config.get("scopes", []))


def parse_tool_configuration(text: str) -> dict[str, Any]:
    """A tool configuration sent as a JSON text (the API's ``developer_key[tool_configuration]``)."""
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise AdminError("tool_configuration must be a JSON object") from exc
    return check_tool_configuration(config)


async def lti_tools(session: AsyncSession, key: DeveloperKey) -> list[ExternalTool]:
    rows = await session.scalars(
        select(ExternalTool).where(ExternalTool.developer_key_id == key.id).order_by(ExternalTool.id)
    )
    return list(rows)


async def upsert_lti_key(
    session: AsyncSession,
    *,
    name: str,
    redirect_uris: list[str],
    tool_configuration: dict[str, Any],
    secret_key: str,
    client_id: str | None = None,
    in_account: bool = True,
    course_ids: list[int] | None = None,
) -> tuple[DeveloperKey, list[ExternalTool]]:
    """A seed file's LTI key, named by ``client_id`` or else by its name: made, or brought in
    line with the configuration; its tool installed where it is not yet (the account and
    each of ``course_ids``)."""
    config = check_tool_configuration(tool_configuration)
    existing = None
    if client_id is None:
        existing = await session.scalar(
            select(DeveloperKey).where(DeveloperKey.name == name.strip(), DeveloperKey.is_lti_key.is_(True))
        )
    key, _secret = await service.save_developer_key(
        session,
        name=name,
        redirect_uris=redirect_uris,
        scopes=list(config.get("scopes", [])),
        client_id=client_id if existing is None else existing.client_id,
        secret_key=secret_key,
    )
    apply_configuration(key, config, scopes_given=True)
    await session.flush()
    tools = await lti_tools(session, key)
    wanted: list[int | None] = ([None] if in_account else []) + list(course_ids or [])
    for course_id in wanted:
        if not any(tool.course_id == course_id for tool in tools):
            tools.append(await install(session, key, secret_key, course_id=course_id))
    return key, tools


def read_jwk_file(text: str) -> dict[str, Any]:
    try:
        return check_public_jwk(json.loads(text))
    except json.JSONDecodeError as exc:
        raise AdminError(f"the public JWK file is not JSON: {exc}") from exc


def platform_urls(public_url: str) -> dict[str, str]:
    """What a tool puts in its configuration for this platform (spec 1.3)."""
    return {
        "issuer": public_url,
        "auth_login_url": f"{public_url}/api/lti/authorize_redirect",
        "auth_token_url": f"{public_url}/login/oauth2/token",
        "key_set_url": f"{public_url}/api/lti/security/jwks",
    }


__all__ = [
    "AGS_SCOPES",
    "DEEP_LINKING",
    "LTI_SCOPES",
    "NRPS_SCOPE",
    "PLACEMENTS",
    "RESOURCE_LINK",
    "Placement",
    "apply_configuration",
    "build_tool_configuration",
    "check_public_jwk",
    "check_tool_configuration",
    "deployment_id",
    "install",
    "lti_tools",
    "parse_tool_configuration",
    "placements",
    "platform_urls",
    "privacy_level",
    "read_jwk_file",
    "save_lti_key",
    "tool_deployment_id",
    "upsert_lti_key",
]
