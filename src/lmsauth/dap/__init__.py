"""The DAP Query API: this server's own Canvas data, opened by an Identity Service token.

It reads Canvas through ``lmsauth.canvas.export`` and checks tokens through
``lmsauth.identity.clients``, nothing else of either service (DESIGN.md).
"""
