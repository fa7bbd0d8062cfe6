"""Instructure's Identity Service: institutions' client credentials and the JWTs they buy.

Other services use only ``lmsauth.identity.clients``; ``app.py`` uses ``routes`` and the CLI
``commands``.
"""
