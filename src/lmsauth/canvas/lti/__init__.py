"""Canvas as an LTI 1.3 platform (spec lti13.md): the launch (third-party initiated login,
``/api/lti/authorize_redirect``, ``/api/lti/authorize``, the id_token), the LTI key set, deep
linking, the course's list of LTI tools, and the LTI Advantage services (client assertions,
Names and Roles, Assignment and Grade Services)."""
