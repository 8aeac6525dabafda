"""View functions: one per response shape, turning stored rows into API bodies."""
