"""What an LLM call costs: the price table, in USD per million tokens, and the arithmetic.

cost = (input x in + output x out + cache_write x written + cache_read x read) / 10^6,
with the token counts of the API's `usage` (its `input_tokens` exclude the cached ones).
A model the table does not know is priced at the table's `other` entry, by default the
dearest model's prices: an unknown model is never priced below what it may cost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "DEFAULT_PRICES",
    "MAX_MODELS",
    "MAX_PRICE_PER_MTOK",
    "OTHER",
    "PER_MILLION",
    "ModelName",
    "ModelPrice",
    "Price",
    "PriceTable",
    "Tokens",
]

OTHER = "other"
MAX_PRICE_PER_MTOK = 1000.0
"""Above any model's price (the dearest today asks 75 USD per million output tokens)."""
MAX_MODELS = 64
"""Entries of the table, and so the bound on the `model` label of the metrics."""
PER_MILLION = 1_000_000

ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Price = Annotated[float, Field(ge=0, le=MAX_PRICE_PER_MTOK)]
_VERSION = re.compile(r"(@.*|-\d{8}|-latest)$")


class ModelPrice(BaseModel):
    """USD per million tokens: read, written, and (prompt caching) written to and read from
    the cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: Price
    output: Price
    cache_write: Price
    cache_read: Price


def _price(input: float, output: float) -> ModelPrice:
    """Anthropic's ratios: a 5-minute cache write costs 1.25 x input, a cache read 0.1 x."""
    return ModelPrice(input=input, output=output, cache_write=input * 1.25, cache_read=input / 10)


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-opus-4-5": _price(5, 25),
    "claude-opus-4-1": _price(15, 75),
    "claude-opus-4-0": _price(15, 75),
    "claude-opus-4": _price(15, 75),
    "claude-sonnet-4-5": _price(3, 15),
    "claude-sonnet-4-0": _price(3, 15),
    "claude-sonnet-4": _price(3, 15),
    "claude-3-7-sonnet": _price(3, 15),
    "claude-haiku-4-5": _price(1, 5),
    "claude-3-5-haiku": _price(0.8, 4),
    "claude-3-haiku": ModelPrice(input=0.25, output=1.25, cache_write=0.3, cache_read=0.03),
    OTHER: _price(15, 75),
}
"""Anthropic's list prices (standard tier, 5-minute cache writes) of the current models."""


@dataclass(frozen=True)
class Tokens:
    """One call's tokens, as the API's `usage` counts them."""

    input: int = 0
    output: int = 0
    cache_write: int = 0
    cache_read: int = 0


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[str, ModelPrice]

    @classmethod
    def with_defaults(cls, configured: Mapping[str, ModelPrice]) -> PriceTable:
        """The defaults, with the operator's entries added or replacing them."""
        return cls({**DEFAULT_PRICES, **configured})

    def entry(self, model: str) -> str:
        """The table's name for `model` (a dated id such as `claude-sonnet-4-5-20250929` is
        its model's), or `other`."""
        name = model.strip().lower()
        for candidate in (name, _VERSION.sub("", name)):
            if candidate in self.prices:
                return candidate
        return OTHER

    def price(self, entry: str) -> ModelPrice:
        return self.prices.get(entry) or self.prices.get(OTHER) or DEFAULT_PRICES[OTHER]

    def cost(self, entry: str, tokens: Tokens) -> float:
        """USD, for `tokens` of the model the table calls `entry`."""
        price = self.price(entry)
        return (
            tokens.input * price.input
            + tokens.output * price.output
            + tokens.cache_write * price.cache_write
            + tokens.cache_read * price.cache_read
        ) / PER_MILLION
