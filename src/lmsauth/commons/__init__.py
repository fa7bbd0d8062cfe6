"""Canvas Commons: LTI 1.1 launches, terms of service, and the session API (spec part C).

Commons trusts Canvas only through the LTI shared secret it issued as a consumer key, never by
reading Canvas's tables, so it runs in the same server (under ``commons_path``) or alone.
"""
