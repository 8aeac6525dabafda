"""The domain: the run model and everything that decides (states, launches, the run
service, trace ingestion, compute environments, run files, tokens). It imports no web,
queue or cloud library; the HTTP layer and the workers call it."""
