"""What every search config shares: checked fields and ``from_profile``.

A search config is a frozen dataclass (``DartsConfig``, ``SpikeDHSConfig``,
``SNASNetSearchConfig``) whose ``__post_init__`` checks its fields with
:func:`check` / :func:`check_fields` and whose ``from_profile`` reads a profile
through :func:`config_from_profile`; the error messages name the class and the
field, the value, and what was expected.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

__all__ = ["is_int", "check", "check_fields", "config_from_profile", "settings_of"]


def is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def check(config: Any, ok: bool, field: str, expected: str) -> None:
    """Raise ``ValueError("<Class>.<field> must be <expected>; got <value>.")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{type(config).__name__}.{field} must be {expected}; "
                         f"got {getattr(config, field)!r}.")


def check_fields(config: Any, positive: Sequence[str] = (), optional_at_least: Mapping = {},
                 choices: Mapping[str, Sequence] = {}) -> None:
    """The common checks: ints >= 1, optional ints with a minimum, and named choices.

    Args:
        config: the dataclass instance being checked.
        positive: fields that must be ints >= 1.
        optional_at_least: ``{field: minimum}`` for fields that are None or an int >= minimum.
        choices: ``{field: allowed values}``.
    """
    for name in positive:
        value = getattr(config, name)
        check(config, is_int(value) and value >= 1, name, "an int >= 1")
    for name, low in optional_at_least.items():
        value = getattr(config, name)
        check(config, value is None or (is_int(value) and value >= low), name,
              f"None or an int >= {low}")
    for name, allowed in choices.items():
        check(config, getattr(config, name) in allowed, name, f"one of {tuple(allowed)}")


def config_from_profile(cls: type, profile: Any, base: Mapping[str, Any],
                        overrides: Mapping[str, Any]):
    """``cls(**base, **overrides)`` after checking ``profile`` and the override names.

    Args:
        cls: the config dataclass.
        profile: a :class:`snnlab.profiles.Profile` (``base`` was read from it).
        base: the fields the profile sets.
        overrides: caller's fields; unknown names raise TypeError listing the valid ones.
    """
    from ..profiles import Profile
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be a snnlab.profiles.Profile; got "
                        f"{type(profile).__name__}. Use snnlab.profiles.get_profile(name).")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown {cls.__name__} field(s) {unknown}; valid: {sorted(fields)}.")
    return cls(**{**base, **overrides})


class _FlatSettings:
    """``view.<name>`` reads ``profile.<method>_<name>`` (profiles with flat prefixed fields)."""

    def __init__(self, profile: Any, method: str):
        self._profile, self._method = profile, method

    def __getattr__(self, name: str) -> Any:
        return getattr(self._profile, f"{self._method}_{name}")


def settings_of(profile: Any, method: str) -> Any:
    """A profile's settings of one method: ``profile.<method>`` (one settings dataclass per
    method), or a read-only view of the flat ``profile.<method>_*`` fields of profiles that
    predate them; either way ``settings_of(profile, "darts").epochs``."""
    group = getattr(profile, method, None)
    return group if dataclasses.is_dataclass(group) else _FlatSettings(profile, method)
