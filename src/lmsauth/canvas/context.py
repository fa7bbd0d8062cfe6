"""What the Canvas service's handlers share: settings, database, key ring, rate limits, the
shared key-value store and page templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse

from lmsauth.core.db import Database
from lmsauth.core.keys import KeyRing
from lmsauth.core.kv import MemoryStore, Store
from lmsauth.core.ratelimit import RateLimits
from lmsauth.core.web import templates
from lmsauth.settings import Profile, Settings

PAGES = Path(__file__).parent / "pages"
SHARED_PAGES = Path(__file__).parent.parent / "core" / "pages"
PEOPLE_PAGES = Path(__file__).parent / "people" / "pages"


@dataclass
class CanvasContext:
    settings: Settings
    db: Database
    keyring: KeyRing
    limits: RateLimits
    store: Store = field(default_factory=MemoryStore)
    pages: Environment = field(default_factory=lambda: templates(PAGES, PEOPLE_PAGES, SHARED_PAGES))

    @property
    def strict(self) -> bool:
        return self.settings.profile is Profile.strict

    def render(self, request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.pages.get_template(name).render(request=request, **values)
        return HTMLResponse(html, status_code=status)
