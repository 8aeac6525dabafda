"""Infrastructure: settings, the database and its migrations, the queue (task names,
sending, the Celery app factory, the embedded broker), logging, metrics and the supervisor
of ``serve``. It imports neither the domain nor the HTTP layer."""
