"""The TRS workflow names a workflow_url may take, and the operator's list of registries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wes_gateway.domain import trs
from wes_gateway.domain.errors import InvalidField
from wes_gateway.infra.config import Settings

pytestmark = pytest.mark.backing_independent  # parsing alone


@pytest.mark.parametrize(
    "url,host,tool_id,version",
    [
        (
            "trs://dockstore.org/%23workflow%2Fgithub.com%2Fnf-core%2Frnaseq/3.14.0",
            "dockstore.org",
            "#workflow/github.com/nf-core/rnaseq",
            "3.14.0",
        ),
        ("trs://TRS.Example.org:8443/123/v1", "trs.example.org:8443", "123", "v1"),
        ("trs://workflowhub.eu/42/feature%2Fx", "workflowhub.eu", "42", "feature/x"),
        (
            "#workflow/github.com/nf-core/rnaseq:3.14.0",
            None,
            "#workflow/github.com/nf-core/rnaseq",
            "3.14.0",
        ),
        (
            "#workflow/github.com/iwc-workflows/atacseq/main:v0.3",
            None,
            "#workflow/github.com/iwc-workflows/atacseq/main",
            "v0.3",
        ),
        ("#workflow/gitlab.com/org/repo", None, "#workflow/gitlab.com/org/repo", None),
        # WESkit's form: the registry's base path before the id, the type after the version.
        (
            "trs://h.org:8080/ga4gh/trs/v2/%23workflow%2Fx/1.0/NFL",
            "h.org:8080",
            "#workflow/x",
            "1.0",
        ),
        ("trs://h.org/api/ga4gh/trs/v2/7/1.0", "h.org", "7", "1.0"),
        # A registry's own URL of the tool version, or of its NFL descriptor.
        (
            "https://dockstore.org/api/ga4gh/trs/v2/tools/%23workflow%2Fgithub.com%2Fnf-core"
            "%2Frnaseq/versions/3.14.0",
            "dockstore.org",
            "#workflow/github.com/nf-core/rnaseq",
            "3.14.0",
        ),
        (
            "https://h.org/ga4gh/trs/v2/tools/7/versions/v1/PLAIN_NFL/descriptor/main.nf",
            "h.org",
            "7",
            "v1",
        ),
    ],
)
def test_the_names_of_a_trs_workflow(url, host, tool_id, version):
    assert trs.parse(url) == trs.TrsReference(url, host, tool_id, version)


@pytest.mark.parametrize("url", ["nf-core/rnaseq", "https://github.com/nf-core/rnaseq", "main.nf"])
def test_other_workflow_urls_are_no_trs_workflow(url):
    assert trs.parse(url) is None and not trs.is_trs(url)


@pytest.mark.parametrize(
    "url",
    [
        "trs://dockstore.org/only-a-tool",
        "trs://dockstore.org/a/b/c",
        "trs://-x.org/a/1",
        "trs://h.org/a%0Ab/1",
        "trs://h.org/a/..",
        "#workflow/github.com/owner-only",
        "#workflow/github.com/a/b:",
        "#workflow/github.com/a/b/c/d:1",
        "#tool/quay.io/a/b:1",
        "trs://h.org/7/1.0/CWL",
        "trs://h.org/some/prefix/7/1.0",
        "https://h.org/ga4gh/trs/v2/tools/7/versions/1.0/WDL/descriptor",
    ],
)
def test_a_malformed_trs_workflow_names_workflow_url(url):
    if url.startswith("#tool/"):
        assert trs.parse(url) is None  # a Dockstore tool, not a workflow: not taken as one
        return
    with pytest.raises(InvalidField) as refused:
        trs.parse(url)
    assert refused.value.field == "workflow_url"


def test_the_registries_setting(tmp_path):
    def registries(value: str) -> dict[str, str]:
        return Settings(data_dir=tmp_path, trs_hosts=value).trs_registries

    assert registries(Settings.model_fields["trs_hosts"].default) == {
        "dockstore.org": "https://dockstore.org/api/ga4gh/trs/v2"
    }
    assert registries("Dockstore.org, http://127.0.0.1:8080/ga4gh/trs/v2/") == {
        "dockstore.org": "https://dockstore.org/ga4gh/trs/v2",
        "127.0.0.1:8080": "http://127.0.0.1:8080/ga4gh/trs/v2",
    }
    assert registries("") == {}
    for bad in ("ftp://h.org/x", "h.org/path", "http://h.org/../x", "a.org, A.org", "a b"):
        with pytest.raises(ValidationError):
            registries(bad)
