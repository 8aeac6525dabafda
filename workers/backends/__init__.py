"""Compute backends that run head jobs, chosen by a compute environment's platform.

Backends are imported only when first used, so cloud SDKs load only where their
platform is configured.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from wes_gateway.domain import compute_envs
from workers.backends.base import Backend

BACKENDS: dict[str, str] = {
    compute_envs.LOCAL: "workers.backends.local:LocalBackend",
    compute_envs.AWS_BATCH: "workers.backends.aws_batch:AwsBatchBackend",
    compute_envs.GOOGLE_BATCH: "workers.backends.google_batch:GoogleBatchBackend",
    compute_envs.SLURM: "workers.backends.slurm:SlurmBackend",
}


# The package extra that brings a platform's SDK.
EXTRAS = {
    compute_envs.AWS_BATCH: "aws",
    compute_envs.GOOGLE_BATCH: "google",
    compute_envs.SLURM: "slurm",
}


class UnknownPlatform(LookupError):
    pass


class MissingSDK(RuntimeError):
    """The workers of this host lack the platform's SDK."""


def backend_class(platform: str | None) -> type[Backend]:
    target = BACKENDS.get(platform or compute_envs.LOCAL)
    if target is None:
        raise UnknownPlatform(f"no backend for platform {platform!r}; known: {sorted(BACKENDS)}")
    module, _, name = target.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        extra = EXTRAS.get(platform or "", "")
        raise MissingSDK(
            f"the workers cannot run {platform} jobs: {exc}; "
            f"install wes-gateway[{extra}] where they run"
        ) from exc


def make_backend(platform: str | None, settings: Any, config: Mapping[str, Any] | None = None):
    """A backend for ``platform`` (local when None), built from the service settings and
    the compute environment's config."""
    cls = backend_class(platform)
    return cls.from_settings(settings, dict(config or {}))
