"""Compute backends that run head jobs (local processes, AWS Batch, Google Batch)."""
