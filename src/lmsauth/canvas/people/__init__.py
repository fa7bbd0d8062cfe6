"""People: Canvas's users and their logins, the Users and Logins APIs, the admin console's
People pages and the ``lmsauth user`` verbs.

The rest of Canvas reaches people through the one rule of who may act (``rules``), re-exported
here."""

from lmsauth.canvas.people.rules import USER_IS_USABLE, usable_user

__all__ = ["USER_IS_USABLE", "usable_user"]
