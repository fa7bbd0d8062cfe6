"""Canvas as an LTI 1.3 platform (spec lti13.md)."""
