"""wes-gateway: Nextflow runs behind the GA4GH WES 1.1 API and a Tower-style REST API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wes-gateway")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

import warnings

# Connexion imports Starlette's test client at start-up, which warns about its HTTP
# backend on every process start; the service never uses that client.
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
