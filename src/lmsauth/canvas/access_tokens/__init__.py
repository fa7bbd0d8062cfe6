"""People's own access tokens: Canvas's manual tokens on the default developer key, the Access
Tokens API (spec 11.2), the Approved Integrations of profile settings (spec 11.3), the
``lmsauth token`` verbs and the tokens of seed files.

The OAuth2 flow's tokens stay in ``canvas/oauth2.py`` and ``canvas/tokens.py``; a manual token
is made with the same helper (``tokens.issue_manual_token``) and checked by the same Bearer code.
"""
