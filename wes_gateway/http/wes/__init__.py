"""The GA4GH WES 1.1 API: handlers (one per operationId) and the views that shape
its bodies."""
