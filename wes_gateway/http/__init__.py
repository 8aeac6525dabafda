"""The HTTP layer: the app factory, authentication, errors, request validation, one
sub-package per API (``wes``, ``tower``: handlers and views side by side) and the
dashboard. Handlers parse, call the domain and render; they decide nothing."""
