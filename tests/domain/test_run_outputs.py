"""The bound and the path rules of a run's outputs list (domain/run_outputs.py), on
listings of any platform."""

from __future__ import annotations

import itertools

import pytest

from wes_gateway.domain.run_outputs import OutputFile, bounded

pytestmark = pytest.mark.backing_independent  # folders alone, no database


def _files(names):
    return (OutputFile(name, f"s3://b/{name}", 1) for name in names)


def test_names_that_could_lead_elsewhere_are_left_out():
    names = ["a.txt", "../up", "b/../../c", "/abs", "d//e", "./f", "g\\h", "i\x01", "", "j/k"]
    listing = bounded(_files(names), 100)
    assert [item.path for item in listing.files] == ["a.txt", "j/k"]
    assert listing.truncated is False


def test_a_listing_is_read_one_past_the_bound_and_cut():
    read = []

    def endless():
        for number in itertools.count():
            read.append(number)
            yield OutputFile(f"f{number}", f"/o/f{number}", number)

    listing = bounded(endless(), 3)
    assert [item.path for item in listing.files] == ["f0", "f1", "f2"]
    assert listing.truncated is True and read == [0, 1, 2, 3]


def test_endless_refused_names_stop_the_listing_too():
    listing = bounded(_files(f"../x{number}" for number in itertools.count()), 5)
    assert listing.files == [] and listing.truncated is True
