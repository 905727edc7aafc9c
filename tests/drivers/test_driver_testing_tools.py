"""`xbarlab.drivers.testing` on a driver written outside xbarlab, with a catalogue of its own
(tests/drivers/acme_dmm.toml): what drivers/README.md shows a driver author."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from xbarlab.drivers.base import Instrument, ScpiErrorQueue
from xbarlab.drivers.numbers import format_number, parse_number
from xbarlab.drivers.testing import catalog_file, catalog_problems, expected_protocol

CATALOGUE = Path(__file__).with_name("acme_dmm.toml")


class AcmeDmm(ScpiErrorQueue, Instrument):
    """A voltmeter driver as someone outside xbarlab would write it."""

    catalog_name = "acme_dmm"
    identity_pattern = re.compile(r"ACME,(DMM\d+),")
    expected_identity = "an ACME DMM"

    def set_nplc(self, nplc: float) -> None:
        self.configure(f":VOLT:NPLC {format_number(nplc)}")

    def reset(self) -> None:
        self.write("*RST")  # not in its catalogue

    def voltage(self) -> float:
        return parse_number(self.ask(":MEAS:VOLT?"))


@pytest.fixture
def acme():
    return catalog_file(CATALOGUE, "acme_dmm")


def test_an_exact_conversation_passes(acme):
    conversation = [("*IDN?", "ACME,DMM1000,42,1.0"), (":VOLT:NPLC 1.0", None),
                    (":SYST:ERR?", '0,"No error"'), (":MEAS:VOLT?", "+1.5E-01")]
    with expected_protocol(AcmeDmm, conversation, catalog=acme) as dmm:
        dmm.set_nplc(1)
        assert dmm.voltage() == 0.15
    assert catalog_problems(acme) == []


def test_a_command_the_catalogue_does_not_list_fails_even_if_expected(acme):
    conversation = [("*IDN?", "ACME,DMM1000,42,1.0"), ("*RST", None)]
    with pytest.raises(AssertionError, match=r"'\*RST' is not listed in the catalogue"), \
            expected_protocol(AcmeDmm, conversation, catalog=acme) as dmm:
        dmm.reset()


def test_a_conversation_left_unfinished_fails(acme):
    conversation = [("*IDN?", "ACME,DMM1000,42,1.0"), (":MEAS:VOLT?", "+1.5E-01")]
    with pytest.raises(AssertionError, match="commands never written"), \
            expected_protocol(AcmeDmm, conversation, catalog=acme):
        pass


def test_the_catalogue_check_names_what_is_wrong(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(CATALOGUE.read_text()
                    .replace('example = ":VOLT:NPLC 1.0"', 'example = ":VOLT:NPLC x"')
                    .replace('source = "ch. 4.5", evidence = "M"', 'source = "", evidence = "Q"')
                    .replace('pattern = "*IDN?", example = "*IDN?"',
                             'pattern = "*IDN ?", example = "*IDN ?"'))
    assert catalog_problems(catalog_file(path, "acme_dmm")) == [
        "':VOLT:NPLC {nplc:number}': example ':VOLT:NPLC x' is not an instance",
        "':MEAS:VOLT?': no source (manual and section)",
        "':MEAS:VOLT?': evidence 'Q'; allowed: D, HW, M, U, V, X",
        "*IDN? is not listed (every driver checks the identity at connect)",
    ]
