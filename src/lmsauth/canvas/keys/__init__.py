"""Developer keys (Canvas's OAuth clients): the service functions, the Developer Keys API and
its account binding, the admin console's Developer Keys pages, the client-credentials grant
of keys with the ``external`` audience, and the ``lmsauth developer-key`` commands."""
