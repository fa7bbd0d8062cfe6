"""Imports every service's models so that their tables are registered on ``Base.metadata``."""

from lmsauth.canvas import changes as canvas_changes
from lmsauth.canvas import models as canvas_models
from lmsauth.canvas import tool_models as canvas_tool_models
from lmsauth.canvas.courses import gradebook as canvas_gradebook_models
from lmsauth.canvas.courses import models as canvas_course_models
from lmsauth.canvas.lti import models as canvas_lti_models
from lmsauth.commons import models as commons_models
from lmsauth.core import keys as core_keys
from lmsauth.dap import models as dap_models
from lmsauth.identity import models as identity_models

__all__ = [
    "canvas_changes",
    "canvas_course_models",
    "canvas_gradebook_models",
    "canvas_lti_models",
    "canvas_models",
    "canvas_tool_models",
    "commons_models",
    "core_keys",
    "dap_models",
    "identity_models",
]
