"""lmsauth: the authentication layer around a Canvas-style learning platform."""

__version__ = "0.1.0"
