"""authhost.frozen: a quick constructor builds what the frozen dataclass's own would."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from authhost.frozen import quick_constructor


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    amount: int = 0
    tags: list[str] = field(default_factory=list, compare=False)
    doubled: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "doubled", 2 * self.amount)


new_sample = quick_constructor(Sample)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [(("a",), {}), (("b", 7), {}), ((), {"name": "c", "amount": 3, "tags": ["x"]})],
)
def test_equal_to_the_dataclass_in_every_field(args, kwargs):
    quick, normal = new_sample(*args, **kwargs), Sample(*args, **kwargs)
    assert type(quick) is Sample
    for f in dataclasses.fields(Sample):  # compare=False and init=False fields too
        assert getattr(quick, f.name) == getattr(normal, f.name), f.name
    assert quick == normal and hash(quick) == hash(normal)
    assert quick.doubled == 2 * quick.amount  # __post_init__ ran


def test_the_result_is_frozen_and_defaults_are_not_shared():
    first, second = new_sample("a"), new_sample("b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.amount = 5  # type: ignore[misc]
    first.tags.append("x")
    assert second.tags == []


def test_arguments_the_dataclass_refuses_are_refused():
    with pytest.raises(TypeError):
        new_sample()  # name is required
    with pytest.raises(TypeError):
        new_sample("a", doubled=4)  # not an __init__ argument


def test_only_slotted_dataclasses_are_accepted():
    @dataclass(frozen=True)
    class NoSlots:
        name: str

    with pytest.raises(TypeError, match="not a slotted dataclass"):
        quick_constructor(NoSlots)
