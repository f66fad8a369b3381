"""The strategy interface: each strategy declares its parameter model once; shared helpers live in base.py."""

from __future__ import annotations

import pytest

from lakehouse_phi.transforms import registry
from lakehouse_phi.transforms.base import ColumnContext, NoParams, Params, Strategy, require_key
from lakehouse_phi.transforms.hmac import Hmac, HmacParams

CTX = ColumnContext(table="patients", column="c", source_column="c")


@pytest.mark.parametrize("cls", list(registry.STRATEGIES.values()), ids=list(registry.STRATEGIES))
def test_every_strategy_has_a_parameter_model_that_refuses_unknown_keys(cls):
    assert issubclass(cls.params_model, Params)
    assert cls.params_model.model_config.get("extra") == "forbid"
    assert not hasattr(cls, "Params")  # one name for the model: the old alias shadowed the base Params class


def test_a_subclass_without_a_model_takes_no_parameters():
    class Echo(Strategy[NoParams]):
        name = "echo"

        def apply(self, values, others=None):
            return values

    assert Echo.params_model is NoParams
    assert Echo(NoParams(), CTX).apply([1]) == [1]


def test_require_key_names_the_column_and_key_but_no_material():
    with pytest.raises(ValueError, match="hmac on patients.c: no key bytes were given; resolve key 'pid'"):
        Hmac(HmacParams(key="pid"), CTX, None)
    strategy = Hmac(HmacParams(key="pid"), CTX, bytes(range(1, 33)))
    assert require_key(strategy) == bytes(range(1, 33))
