"""Local stand-ins of cloud services, reached over real connections."""
