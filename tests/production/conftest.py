"""The outage tests play PostgreSQL and Redis going away, so they belong to the run that has
them (``LMSAUTH_TEST_DATABASE_URL`` and ``LMSAUTH_TEST_REDIS_URL``, the second run of
``./scripts/test``); the SQLite run does not collect them."""

from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL

collect_ignore = [] if TEST_DATABASE_URL and TEST_REDIS_URL else ["test_outages.py"]
