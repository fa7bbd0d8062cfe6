"""The Canvas LMS OAuth2 provider and the part of Canvas's REST API clients touch first."""
