"""The worker side: the Celery app, its tasks and the compute backends."""
