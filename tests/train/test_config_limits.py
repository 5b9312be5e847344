"""Each numeric field's accepted range is declared once (LIMITS) and is exactly what validation accepts."""

from __future__ import annotations

import dataclasses

import pytest

from resnet_core.data import DatasetError, DatasetSpec
from resnet_core.data.spec import LIMITS as DATA_LIMITS
from resnet_core.train import TrainConfig, TrainConfigError
from resnet_core.train.config import CHOICES, LIMITS


def _outside(low, high):
    """Values just below and just above [low, high], of the field's own kind."""
    if isinstance(low, int) and isinstance(high, int):
        return [low - 1, high + 1]
    return [low - max(abs(low) * 0.5, 1e-9), high + max(abs(high) * 0.01, 1e-9)]


def test_every_numeric_train_field_has_a_limit_and_every_limit_a_field():
    numeric = {f.name for f in dataclasses.fields(TrainConfig)
               if f.type in ("int", "float", "int | None")}
    assert numeric == set(LIMITS)
    assert set(CHOICES) == {"optimizer", "schedule", "device"}


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_train_limits_are_what_validation_accepts(name):
    low, high = LIMITS[name]
    for value in (low, high):
        assert getattr(TrainConfig(**{name: value}), name) == value
    for value in _outside(low, high):
        with pytest.raises(TrainConfigError) as err:
            TrainConfig(**{name: value})
        shown = [str(v) if isinstance(v, int) else f"{v:g}" for v in (low, high)]  # as the message writes them
        assert str(err.value).startswith(f"{name}: ") and all(text in str(err.value) for text in shown)


@pytest.mark.parametrize("name", [n for n, (low, high) in LIMITS.items() if isinstance(low, int)])
def test_whole_number_train_fields_refuse_floats_and_bools(name):
    for value in (float(LIMITS[name][0]) + 0.5, True):
        with pytest.raises(TrainConfigError, match=f"^{name}: .* must be a whole number"):
            TrainConfig(**{name: value})


def test_max_steps_may_also_be_none_and_choices_name_the_allowed_values():
    assert TrainConfig(max_steps=None).max_steps is None
    for name, allowed in CHOICES.items():
        with pytest.raises(TrainConfigError, match=f"^{name}: 'nope' is not allowed; choose one of"):
            TrainConfig(**{name: "nope"})
        for value in allowed:
            if name != "device":  # resolving a device happens at start; any listed name is a valid config
                TrainConfig(**{name: value})


@pytest.mark.parametrize("name", sorted(DATA_LIMITS))
def test_dataset_limits_are_what_the_spec_accepts(name):
    low, high = DATA_LIMITS[name]
    # An image folder: a generated Shapes set is further bounded by the bytes it would take (1,000,000 images
    # at 32 px with the default 2,000 for validation would take 3,914 MB), tested in tests/data/test_hostile_data.py.
    folder = {"kind": "imagefolder", "root": "photos"}
    for value in (low, high):
        assert getattr(DatasetSpec(**folder, **{name: value}), name) == value
    for value in (low - 1, high + 1, float(low), True):
        with pytest.raises(DatasetError, match=f"^dataset {name}: .* must be a whole number from {low} to {high}"):
            DatasetSpec(**folder, **{name: value})


def test_dataset_spec_other_fields_use_the_same_validation_style():
    with pytest.raises(DatasetError, match="^dataset kind: 'mnist' is unknown; choose one of"):
        DatasetSpec(kind="mnist")
    with pytest.raises(DatasetError, match="^dataset val_fraction: 1.0 must be between 0 and 1"):
        DatasetSpec(val_fraction=1.0)
    with pytest.raises(DatasetError, match="^dataset download: 'yes' must be true or false"):
        DatasetSpec(download="yes")
    with pytest.raises(DatasetError, match="unknown field"):
        DatasetSpec.from_dict({"size": 32})
