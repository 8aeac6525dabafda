"""Workflows named by a GA4GH Tool Registry Service (TRS v2): a ``workflow_url`` that is
a TRS URI, ``trs://<host>/<tool id>/<version>`` (the tool id URL-encoded, as
``trs://dockstore.org/%23workflow%2Fgithub.com%2Fnf-core%2Frnaseq/3.14.0``; see ``parse``
for the longer forms clients write, and a registry's own https URL of it), or a
Dockstore id, ``#workflow/github.com/nf-core/rnaseq:3.14.0`` (the version after the last
colon, as Dockstore and Terra write a tool version; without one, the launch's
``revision`` names it).

A run of one is a run of the git repository and revision the registry gives for that
tool version: its Nextflow (NFL) descriptor's repository, and, when its primary
descriptor is a script other than ``main.nf``, that script. Only registries the operator
allows are asked (``WES_GATEWAY_TRS_HOSTS``); answers are kept for a while, so repeated
submissions of one version ask once.

Dockstore's ids name the repository themselves (``#workflow/<git host>/<owner>/<repo>``
and, for one of several workflows of a repository, a workflow name after it); the
version's name is its git branch or tag. For other registries the repository and
revision are read from the raw-file URL of the descriptor (GitHub's
``raw.githubusercontent.com/<owner>/<repo>/<ref>/<path>``, GitLab's
``<host>/<owner>/<repo>/-/raw/<ref>/<path>``).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from wes_gateway.domain.errors import InvalidField, ServiceUnavailable
from wes_gateway.infra import trs_client
from wes_gateway.infra.config import Settings

FIELD = "workflow_url"
SCHEME = "trs://"
DOCKSTORE_WORKFLOW = "#workflow/"
DESCRIPTOR_TYPE = "NFL"  # the only TRS descriptor type this service runs
CACHE_ENTRIES = 512

_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:[0-9]{1,5})?")
# A tool id or version as a registry names it: printable, no spaces or quotes; each is
# URL-encoded whole when a registry is asked.
_ID = re.compile(r"[A-Za-z0-9#_.:/@+~=-]{1,255}")
_VERSION = re.compile(r"[A-Za-z0-9_.:/@+~=-]{1,100}")
# #workflow/<git host>/<owner>/<repo>[/<workflow name>]
_DOCKSTORE_ID = re.compile(
    r"#workflow/(?P<host>[A-Za-z0-9.-]+\.[A-Za-z]{2,})/(?P<owner>[A-Za-z0-9_.-]+)"
    r"/(?P<repo>[A-Za-z0-9_.-]+)(/[A-Za-z0-9_.-]+)?"
)
_GITHUB_RAW = re.compile(
    r"https://raw\.githubusercontent\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+)"
    r"/(?P<ref>[^/]+)/(?P<path>.+)"
)
_GITLAB_RAW = re.compile(
    r"https://(?P<host>[A-Za-z0-9.-]+)/(?P<owner>[A-Za-z0-9_./-]+?)/(?P<repo>[A-Za-z0-9_.-]+)"
    r"/-/raw/(?P<ref>[^/]+)/(?P<path>.+)"
)
# A TRS descriptor type as a path segment names it (NFL, PLAIN_NFL, CWL, ...).
_TYPE = re.compile(r"(PLAIN_)?[A-Z]{2,12}")
_TRS_PATH = "ga4gh/trs/v2"
# A registry's URL of a tool version, or of one of its descriptor's resources.
_TRS_URL = re.compile(
    r"https?://(?P<host>[^/?#]+)(/[^/?#]+)*?/ga4gh/trs/v2/tools/(?P<id>[^/?#]+)"
    r"/versions/(?P<version>[^/?#]+)(/(?P<type>(PLAIN_)?[A-Z]{2,12})(/(descriptor|files)"
    r"(/[^?#]*)?)?)?/?"
)
_PRIMARY = "PRIMARY_DESCRIPTOR"
_DEFAULT_SCRIPT = "main.nf"


@dataclass(frozen=True)
class TrsReference:
    """A TRS workflow as a ``workflow_url`` names it."""

    uri: str  # as sent
    host: str | None  # the registry's host[:port]; None: the first allowed (a Dockstore id)
    tool_id: str
    version: str | None  # None: a Dockstore id without one


@dataclass(frozen=True)
class Resolution:
    """What a TRS workflow resolved to: the run's pipeline and revision."""

    uri: str
    registry: str  # the TRS base URL asked
    tool_id: str
    version: str
    git_url: str
    revision: str
    main_script: str | None = None

    @property
    def version_url(self) -> str:
        return version_url(self.registry, self.tool_id, self.version)

    def record(self) -> dict[str, Any]:
        """The resolution as the run keeps it and GetRunLog shows it."""
        record = {
            "trs_uri": self.uri,
            "trs_tool_version_url": self.version_url,
            "tool_id": self.tool_id,
            "version": self.version,
            "descriptor_type": DESCRIPTOR_TYPE,
            "url": self.git_url,
            "revision": self.revision,
        }
        if self.main_script:
            record["main_script"] = self.main_script
        return record


def is_trs(value: str) -> bool:
    return value.startswith((SCHEME, DOCKSTORE_WORKFLOW)) or bool(_TRS_URL.fullmatch(value))


def parse(value: str) -> TrsReference | None:
    """The TRS workflow ``value`` names; None when it names none. A malformed one is a
    400 naming ``workflow_url``. Taken: ``trs://<host>/<id>/<version>`` (the TRS URI of
    the spec), the same with the registry's base path before the id and a descriptor
    type after the version (``trs://<host>/ga4gh/trs/v2/<id>/<version>/NFL``, as WESkit
    writes one), a registry's own URL of the tool version or of its NFL descriptor
    (``https://<host>/.../ga4gh/trs/v2/tools/<id>/versions/<version>[/NFL/descriptor]``)
    and a Dockstore id."""
    if value.startswith(SCHEME):
        host, _, path = value[len(SCHEME) :].partition("/")
        parts = path.split("/")
        kind = parts.pop() if len(parts) >= 3 and _TYPE.fullmatch(parts[-1]) else None
        prefix = "/".join(parts[:-2])
        if len(parts) < 2 or not all(parts) or prefix and not prefix.endswith(_TRS_PATH):
            raise InvalidField(
                FIELD, "a TRS URI is trs://<host>/<URL-encoded tool id>/<URL-encoded version>"
            )
        return _reference(value, host, parts[-2], parts[-1], kind)
    match = _TRS_URL.fullmatch(value)
    if match is not None:
        return _reference(value, match["host"], match["id"], match["version"], match["type"])
    if value.startswith(DOCKSTORE_WORKFLOW):
        tool, colon, version = value.rpartition(":")
        if not colon:
            tool, version = value, ""
        if not _DOCKSTORE_ID.fullmatch(tool) or (colon and not version):
            raise InvalidField(
                FIELD,
                "a Dockstore workflow id is #workflow/<git host>/<owner>/<repository>"
                "[/<workflow name>][:<version>]",
            )
        return TrsReference(
            uri=value, host=None, tool_id=tool, version=_version(version) if version else None
        )
    return None


def _reference(uri: str, host: str, tool: str, version: str, kind: str | None) -> TrsReference:
    if not _HOST.fullmatch(host):
        raise InvalidField(FIELD, "the host of a TRS URI is a DNS name, with a port or not")
    if kind is not None and kind.removeprefix("PLAIN_") != DESCRIPTOR_TYPE:
        raise InvalidField(
            FIELD, f"names a {kind} descriptor; this service runs Nextflow ({DESCRIPTOR_TYPE})"
        )
    tool_id, version_id = _tool_id(unquote(tool)), _version(unquote(version))
    return TrsReference(uri=uri, host=host.lower(), tool_id=tool_id, version=version_id)


def _tool_id(value: str) -> str:
    if not _ID.fullmatch(value) or ".." in value:
        raise InvalidField(FIELD, "not a TRS tool id (at most 255 characters, no spaces)")
    return value


def _version(value: str) -> str:
    if not _VERSION.fullmatch(value) or ".." in value:
        raise InvalidField(FIELD, "not a TRS version id (at most 100 characters, no spaces)")
    return value


def version_url(registry: str, tool_id: str, version: str) -> str:
    return f"{registry}/tools/{quote(tool_id, safe='')}/versions/{quote(version, safe='')}"


Fetch = Callable[[str], Any]


class Resolver:
    """Resolves TRS workflows through the allowed registries, keeping each answer for
    ``ttl`` seconds (at most CACHE_ENTRIES of them, the least recently used going first).
    ``fetch`` GETs a URL's JSON, raising the errors of ``infra.trs_client``."""

    def __init__(self, registries: Mapping[str, str], fetch: Fetch, ttl: float) -> None:
        self._registries = dict(registries)
        self._fetch = fetch
        self._ttl = ttl
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, Resolution]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def hosts(self) -> list[str]:
        """The allowed registries' host[:port]s, the first taking Dockstore ids."""
        return list(self._registries)

    @classmethod
    def from_settings(cls, settings: Settings) -> Resolver:
        timeout = settings.trs_timeout
        return cls(
            settings.trs_registries,
            lambda url: trs_client.get_json(url, timeout=timeout),
            settings.trs_cache_ttl,
        )

    def resolve(self, ref: TrsReference, revision: str | None = None) -> Resolution:
        """``revision``: the launch's own, the version of a Dockstore id given without one
        (with a version, the two may not differ)."""
        registry = self._registry(ref.host)
        version = ref.version
        if revision and version and revision != version:
            raise InvalidField(
                "workflow_engine_parameters.revision",
                f"differs from the version {FIELD} names ({version!r}); give one",
            )
        version = version or (_version(revision) if revision else None)
        if version is None:
            raise InvalidField(
                FIELD,
                "a Dockstore workflow id needs its version: #workflow/...:<version>, or "
                "workflow_engine_parameters.revision",
            )
        key = (registry, ref.tool_id, version)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                self._cache.move_to_end(key)
                return replace(cached[1], uri=ref.uri)
        resolution = self._ask(ref, registry, version)
        if self._ttl > 0:
            with self._lock:
                self._cache[key] = (now + self._ttl, resolution)
                self._cache.move_to_end(key)
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return resolution

    def _registry(self, host: str | None) -> str:
        if host is None:
            if not self._registries:
                raise InvalidField(FIELD, "this service resolves no TRS workflows")
            return next(iter(self._registries.values()))
        registry = self._registries.get(host)
        if registry is None:
            allowed = ", ".join(self._registries) or "none"
            problem = f"TRS host {host!r} is not one this service resolves from"
            raise InvalidField(FIELD, f"{problem} (allowed: {allowed})")
        return registry

    def _ask(self, ref: TrsReference, registry: str, version: str) -> Resolution:
        url = version_url(registry, ref.tool_id, version)
        what = f"{ref.tool_id!r} version {version!r}"
        tool_version = self._get(url, registry, what)
        if not isinstance(tool_version, dict):
            raise _unusable(registry, "its tool version is not a JSON object")
        types = tool_version.get("descriptor_type") or []
        if not isinstance(types, list):
            raise _unusable(registry, "descriptor_type is not a list")
        if DESCRIPTOR_TYPE not in types:
            shown = ", ".join(str(t)[:20] for t in types[:5]) or "none"
            raise InvalidField(
                FIELD,
                f"{what} is a workflow of type {shown} at {_host(registry)}; this service "
                f"runs Nextflow ({DESCRIPTOR_TYPE}) only",
            )
        main_script = self._main_script(url, registry, what)
        dockstore = _DOCKSTORE_ID.fullmatch(ref.tool_id)
        if dockstore is not None:
            git_url = "https://{host}/{owner}/{repo}".format(**dockstore.groupdict())
            name = tool_version.get("name")
            revision = name if isinstance(name, str) and name else version
        else:
            git_url, revision = self._from_descriptor(url, registry, what)
        return Resolution(
            uri=ref.uri,
            registry=registry,
            tool_id=ref.tool_id,
            version=version,
            git_url=git_url,
            revision=revision,
            main_script=main_script,
        )

    def _main_script(self, url: str, registry: str, what: str) -> str | None:
        """The primary descriptor's path when it is a script Nextflow would not find by
        itself (Dockstore's primary NFL descriptor is usually nextflow.config, whose
        manifest names the script)."""
        files = self._get(f"{url}/{DESCRIPTOR_TYPE}/files", registry, what)
        if not isinstance(files, list):
            raise _unusable(registry, "its file list is not a JSON list")
        for entry in files:
            if isinstance(entry, dict) and entry.get("file_type") == _PRIMARY:
                path = str(entry.get("path") or "").lstrip("/")
                if path.endswith(".nf") and path != _DEFAULT_SCRIPT:
                    return path
                return None
        return None

    def _from_descriptor(self, url: str, registry: str, what: str) -> tuple[str, str]:
        wrapper = self._get(f"{url}/{DESCRIPTOR_TYPE}/descriptor", registry, what)
        raw = wrapper.get("url") if isinstance(wrapper, dict) else None
        if isinstance(raw, str):
            match = _GITHUB_RAW.fullmatch(raw)
            if match is not None:
                return "https://github.com/{owner}/{repo}".format(**match.groupdict()), unquote(
                    match["ref"]
                )
            match = _GITLAB_RAW.fullmatch(raw)
            if match is not None:
                git = "https://{host}/{owner}/{repo}".format(**match.groupdict())
                return git, unquote(match["ref"])
        raise InvalidField(
            FIELD,
            f"{_host(registry)} gives no git repository for {what} (its descriptor's url is "
            "not a raw file URL of GitHub or GitLab)",
        )

    def _get(self, url: str, registry: str, what: str) -> Any:
        try:
            return self._fetch(url)
        except trs_client.TrsNotFound:
            raise InvalidField(FIELD, f"{_host(registry)} has no TRS tool {what}") from None
        except trs_client.TrsRefused as exc:
            raise InvalidField(
                FIELD, f"{_host(registry)} refused to give TRS tool {what} ({exc})"
            ) from None
        except trs_client.TrsUnreachable as exc:
            raise ServiceUnavailable(
                f"{FIELD}: the TRS registry {_host(registry)} could not be reached ({exc}); "
                "try again later"
            ) from None


def _host(registry: str) -> str:
    return urlsplit(registry).netloc


def _unusable(registry: str, problem: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"{FIELD}: the TRS registry {_host(registry)} gave an answer this service cannot "
        f"use ({problem})"
    )
