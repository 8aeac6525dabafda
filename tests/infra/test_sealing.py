"""Sealing of stored secrets: a sealed value holds nothing of the clear text, opens with
the key that sealed it (or a list that still holds it), and refuses a wrong key or an
altered text instead of returning garbage."""

from __future__ import annotations

import pytest

from wes_gateway.infra.config import Settings
from wes_gateway.infra.sealing import CannotOpen, Sealer

pytestmark = pytest.mark.backing_independent  # the sealing alone, no database

VALUE = {"secretKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}


def test_a_sealed_value_opens_with_its_key_and_holds_no_clear_text():
    sealer = Sealer([b"old key"])
    sealed = sealer.seal(VALUE)
    assert sealed.startswith("v1.") and "wJalrXUtnFEMI" not in sealed
    assert sealer.seal(VALUE) != sealed  # a data key of its own each time
    assert sealer.open(sealed) == VALUE


def test_rotation_the_first_key_seals_every_key_opens():
    old = Sealer([b"old key"]).seal(VALUE)
    rotating = Sealer([b"new key", b"old key"])
    assert rotating.open(old) == VALUE
    new = rotating.seal(VALUE)
    assert Sealer([b"new key"]).open(new) == VALUE
    with pytest.raises(CannotOpen):
        Sealer([b"old key"]).open(new)
    # Resealing moves a value to the newest key without opening its body.
    assert Sealer([b"new key"]).open(rotating.reseal(old)) == VALUE


def test_a_wrong_key_or_an_altered_text_is_refused():
    sealed = Sealer([b"old key"]).seal(VALUE)
    with pytest.raises(CannotOpen):
        Sealer([b"another key"]).open(sealed)
    head, wrapped, body = sealed.split(".")
    with pytest.raises(CannotOpen):
        Sealer([b"old key"]).open(f"{head}.{wrapped}.{body[:-4]}AAAA")
    with pytest.raises(CannotOpen):
        Sealer([b"old key"]).open("not sealed")


def test_the_key_is_the_credentials_key_else_the_secret_key(tmp_path):
    assert Settings(data_dir=tmp_path, secret_key="s").credentials_keys == (b"s",)
    both = Settings(data_dir=tmp_path, secret_key="s", credentials_key=" new , old ")
    assert both.credentials_keys == (b"new", b"old")
