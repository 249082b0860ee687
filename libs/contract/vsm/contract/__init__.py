"""The vsm message contract: what every service agrees on, and nothing else."""

from vsm.contract.envelope import Envelope, VsmId
from vsm.contract.errors import ErrorReply, Unprocessable
from vsm.contract.message import Message, message_types

__all__ = ["Envelope", "ErrorReply", "Message", "Unprocessable", "VsmId", "message_types"]
