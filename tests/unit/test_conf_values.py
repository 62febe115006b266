"""ConfigValues: typed settings out of a TC_Config, with defaults, floors and ranges."""

from __future__ import annotations

import pytest

from tarsus.conf import ConfigValues, parse

VALUES = ConfigValues(
    parse(
        """<tars>
  <reap>
    interval = 2
    timeout=150
    rate=0.5
    big=100.7
    blank=
    off=y
    protect=
    word=soon
    name= tars.mynode
  </reap>
</tars>"""
    )
)


def test_numbers_with_defaults_floors_and_ranges() -> None:
    assert VALUES.number("/tars/reap<timeout>", 10.0) == 150.0
    assert VALUES.number("/tars/reap<interval>", 10.0, minimum=5.0) == 5.0
    assert VALUES.number("/tars/reap<absent>", 10.0, minimum=5.0) == 10.0
    assert VALUES.number("/tars/reap<blank>", 10.0) == 10.0
    assert VALUES.number("/tars/reap<timeout>", 75.0, within=(2, 180)) == 150.0
    assert VALUES.number("/tars/reap<interval>", 75.0, within=(5, 180)) == 75.0
    # an integer is cut first, then checked: 0.5 -> 0 is outside 1-100, 100.7 -> 100 inside
    assert VALUES.integer("/tars/reap<rate>", 30, within=(1, 100)) == 30
    assert VALUES.integer("/tars/reap<big>", 30, within=(1, 100)) == 100


def test_a_non_number_names_the_key() -> None:
    with pytest.raises(ValueError, match=r"/tars/reap<word> = 'soon' is not a number"):
        VALUES.number("/tars/reap<word>", 1.0)


def test_names_and_switches() -> None:
    assert VALUES.text("/tars/reap<name>", "tars.tarsnode") == "tars.mynode"
    assert VALUES.text("/tars/reap<blank>", "tars.tarsnode") == "tars.tarsnode"
    assert VALUES.yes("/tars/reap<off>")
    assert not VALUES.yes("/tars/reap<absent>") and not VALUES.yes("/tars/reap<word>")
    # recoverProtect-style switches: on unless absent or N, so a blank value is on
    assert VALUES.not_no("/tars/reap<protect>") and VALUES.not_no("/tars/reap<word>")
    assert not VALUES.not_no("/tars/reap<absent>")
