"""The model card: what a model is, read once into one typed record.

Training writes it beside the model (`model_card.json`); serving, drift, the registry
and the faces read it through `read_card`, so none decodes JSON of its own, and a card
from elsewhere (a bundle, a sync) that is not this shape is refused with one line.
"""

from __future__ import annotations

import json

import msgspec

from mlyard.core.config import ParamValue
from mlyard.core.models.features import FeatureSpec
from mlyard.core.models.model_text import ModelRefused


class ModelCard(msgspec.Struct, kw_only=True):
    format: str = "lightgbm-text"
    model: str
    run_id: str
    task: str  # binary, multiclass or regression
    objective: str
    primary_metric: str
    threshold: float | None = None  # binary: the probability that is a positive
    spec: FeatureSpec
    metrics: dict[str, float | None] = msgspec.field(default_factory=dict)  # holdout.*
    best_iteration: int = 0
    params: dict[str, ParamValue] = msgspec.field(default_factory=dict)
    datasets: list[str] = msgspec.field(default_factory=list)
    # gain, split, contribution -> feature -> share
    feature_importance: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)


def read_card(raw: bytes, label: str) -> ModelCard:
    """The card in `raw`; ModelRefused naming `label` when it is not a model card."""
    try:
        return msgspec.json.decode(raw, type=ModelCard)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ModelRefused(f"{label}: its model card is not a model card ({exc}); "
                           "refused") from None


def card_bytes(card: ModelCard) -> bytes:
    """The card as written beside the model: indented, keys sorted, for people too."""
    return json.dumps(msgspec.to_builtins(card), indent=2, sort_keys=True).encode()
