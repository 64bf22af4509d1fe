"""A dataset version's profile as the catalog keeps it: per column its counts, range,
moments, quantiles, levels and histogram, typed once here so every reader (the CLI, the
UI, the diff) sees the same fields. The JSON is what earlier versions wrote; a field an
earlier version did not write takes its default."""

from __future__ import annotations

import json
import math

import msgspec


class Level(msgspec.Struct, array_like=True, frozen=True):
    """A level and its rows, kept as `[value, rows]` (the value None: missing)."""

    value: str | None
    rows: int


class ColumnProfile(msgspec.Struct, kw_only=True, omit_defaults=True):
    type: str  # the contract's type
    rows: int = 0
    nulls: int = 0
    null_rate: float = 0.0
    distinct: int = 0  # a HyperLogLog estimate past a million rows
    min: float | str | None = None  # text for dates and times
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    p05: float | None = None
    p25: float | None = None
    p50: float | None = None
    p75: float | None = None
    p95: float | None = None
    true_rate: float | None = None  # booleans
    top: list[Level] | None = None  # categories and booleans: the most common levels
    levels: dict[str, int] | None = None  # every level's rows, up to 10,000 levels
    histogram: list[int] | None = None  # numbers: rows in 12 equal bins of the sample
    new_levels: dict[str, int] | None = None  # levels of an open column seen first here


Profile = dict[str, ColumnProfile]  # column -> its profile


def encode_profile(profile: Profile) -> str:
    """Strict JSON: a figure that is not finite is stored as missing."""
    return msgspec.json.encode(profile).decode()


def decode_profile(text: str) -> Profile:
    """Strict JSON straight into the types (every listing decodes every version's
    profile); only what earlier versions wrote with `NaN` or `Infinity` goes the slow way,
    through the json module. A profile that is not one (a stranger's bundle) reads as
    empty rather than failing every listing."""
    try:
        return msgspec.json.decode(text, type=Profile)
    except msgspec.ValidationError:
        return {}
    except msgspec.DecodeError:  # not strict JSON
        try:
            return msgspec.convert(_finite(json.loads(text)), Profile)
        except (ValueError, msgspec.ValidationError):
            return {}


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value
