"""reuse.py: values kept between a replay's runs, and only inside `reused()`."""

from __future__ import annotations

from ml_platform.reuse import KEPT_PER_KIND, remembered, reused, reusing


def test_outside_a_reused_block_every_call_builds_anew():
    built = []
    assert not reusing()
    assert [remembered("kind", "key", lambda: built.append(1) or len(built)) for _ in range(3)] == [1, 2, 3]


def test_inside_a_reused_block_a_value_is_built_once_per_kind_and_key_and_forgotten_after():
    built = []

    def build(value):
        built.append(value)
        return [value]  # a new object each time: the same object back means it was kept

    with reused():
        assert reusing()
        first = remembered("kind", "a", lambda: build("a"))
        assert remembered("kind", "a", lambda: build("a")) is first
        assert remembered("other kind", "a", lambda: build("a other")) == ["a other"]
        for key in range(KEPT_PER_KIND):  # the oldest key of a kind is dropped beyond KEPT_PER_KIND
            remembered("kind", key, lambda key=key: build(key))
        assert remembered("kind", "a", lambda: build("a again")) == ["a again"]
    assert not reusing()
    assert remembered("kind", "a", lambda: build("after")) == ["after"]
    assert built == ["a", "a other", 0, 1, 2, 3, "a again", "after"]
