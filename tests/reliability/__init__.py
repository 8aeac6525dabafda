"""The reliability suite: real processes crashed, stopped and restarted under load."""
