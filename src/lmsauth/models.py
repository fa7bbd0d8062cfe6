"""Imports every service's models so that their tables are registered on ``Base.metadata``."""

from lmsauth.canvas import models as canvas_models
from lmsauth.core import keys as core_keys

__all__ = ["canvas_models", "core_keys"]
