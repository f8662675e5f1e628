"""Every registered loss passes the conformance kit: a new loss cannot land without a case."""

import importlib
import pkgutil

import pytest

import lossreg
import tests.cases
from lossreg.testing import check_loss


def _all_cases():
    cases = {}
    for mod in pkgutil.iter_modules(tests.cases.__path__):
        module = importlib.import_module(f"tests.cases.{mod.name}")
        for name, case in module.CASES.items():
            assert name not in cases, f"two case files define {name!r}"
            cases[name] = case
    return cases


CASES = _all_cases()


def _builtin():
    # in-process registrations (doctests, other tests) are not part of the catalog
    return {n for n in lossreg.available() if lossreg.describe(n).distribution == "lossreg"}


def test_every_registered_loss_has_a_case():
    registered = _builtin()
    assert registered - set(CASES) == set(), "losses without a conformance case"
    assert set(CASES) - registered == set(), "cases for losses that are not registered"


@pytest.mark.parametrize("name", sorted(CASES))
def test_conformance(name):
    check_loss(name, CASES[name])
