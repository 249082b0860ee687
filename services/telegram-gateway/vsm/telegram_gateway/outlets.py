"""What the gateway publishes, declared once so the AsyncAPI document shows every outlet."""

from __future__ import annotations

from dataclasses import dataclass

from vsm.contract import topology
from vsm.contract.algedonic import AlgedonicSignal
from vsm.contract.system5 import ACK_KEY, AlertAcknowledgement
from vsm.contract.telegram import TELEGRAM, UPDATE_KEY, TelegramUpdate
from vsm.kit.bus import Bus, Publisher


@dataclass(frozen=True)
class Outlets:
    algedonic: Publisher
    acknowledgements: Publisher
    updates: Publisher


def outlets(bus: Bus) -> Outlets:
    return Outlets(
        algedonic=bus.publisher(
            topology.ALGEDONIC, AlgedonicSignal, description="/signal from a person in a chat."
        ),
        acknowledgements=bus.publisher(
            topology.OPERATORS,
            AlertAcknowledgement,
            routing_key=ACK_KEY,
            description="An operator pressed an alert's Acknowledge button.",
        ),
        updates=bus.publisher(
            TELEGRAM,
            TelegramUpdate,
            routing_key=UPDATE_KEY,
            description="A webhook update, parked before Telegram gets its 200.",
        ),
    )
