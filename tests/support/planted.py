"""A planted bug must be found: the property, run over freshly generated examples, fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies import SearchStrategy

T = TypeVar("T")


def must_fail(examples: SearchStrategy[T], holds: Callable[[T], bool], tries: int = 500) -> None:
    """Some example drawn from ``examples`` (at most ``tries``) breaks ``holds``."""

    # Finding the bug is the point; shrinking it only costs time.
    @settings(
        max_examples=tries,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(examples)
    def prop(example: T) -> None:
        assert holds(example)

    with pytest.raises(AssertionError):
        prop()
