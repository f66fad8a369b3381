"""Governance renderings take the parameters of the ingest strategy of the same name, validated by that strategy's
parameter model (one place), strictly (YAML gives native types), with the place and an example in the message."""

from __future__ import annotations

import pytest

from lakehouse_phi.errors import PolicyError
from lakehouse_phi.policy.load import policy_from_data
from lakehouse_phi.policy.model import Rendering
from lakehouse_phi.transforms.age_cap import AgeCapParams

PLACE = "governance.tables.main.s.t.masks.x.otherwise"


def _problem(show: object) -> str:
    data = {
        "version": 1, "name": "t", "keys": {}, "groups": {},
        "tables": {"t": {"source": {"format": "csv", "path": "p"}, "bronze": "b",
                         "columns": {"x": {"type": "string"}}}},
        "governance": {"function_schema": "main.gov",
                       "tables": {"main.s.t": {"masks": {"x": {"otherwise": show}}}}},
    }
    with pytest.raises(PolicyError) as info:
        policy_from_data(data, "t")
    found = {p.place: p.message for p in info.value.problems}
    return found[PLACE]


@pytest.mark.parametrize(("show", "expected"), [
    ({"partial": {"keep_last": -1}}, "partial.keep_last: Input should be greater than or equal to 0"),
    ({"partial": {"keep_last": True}}, "partial.keep_last: Input should be a valid integer"),
    ({"partial": {"keep_last": "4"}}, "partial.keep_last: Input should be a valid integer"),
    ({"partial": {"mask_char": "**"}}, "partial.mask_char: String should have at most 1 character"),
    ({"partial": {"kep": 1}}, "unknown partial parameter 'kep'; allowed: keep_first, keep_last, mask_char"),
    ({"partial": 4}, "partial takes a mapping"),
    ({"redact": 3}, "redact.with: Input should be a valid string"),
    ({"generalize_date": "fortnight"}, "generalize_date.to: Input should be 'year', 'quarter', 'month', 'week' or 'day'"),
    ({"age_cap": {"cap": 0}}, "age_cap.cap: Input should be greater than or equal to 1"),
    ({"age_cap": {"limit": 80}}, "unknown age_cap parameter 'limit'"),
    ({"hide": 1}, "'hide' takes no parameter"),
])
def test_bad_parameters_are_reported_by_the_strategy_model(show, expected):
    assert expected in _problem(show)


def test_age_cap_default_comes_from_the_parameter_model():
    assert Rendering.model_validate("age_cap").arg == {"cap": AgeCapParams().cap}
    assert Rendering.model_validate({"age_cap": {"cap": 85}}).model_dump() == {"age_cap": {"cap": 85}}


def test_written_shape_is_kept():
    assert Rendering.model_validate({"partial": {"keep_last": 4}}).model_dump() == {"partial": {"keep_last": 4}}
    assert Rendering.model_validate({"redact": "***"}).arg == "***"
    assert Rendering.model_validate({"generalize_date": "quarter"}).arg == "quarter"
