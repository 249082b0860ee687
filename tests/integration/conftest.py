"""A running system for integration tests: the seven services as processes on a real broker
(launched by `tests.support.system`), shared by the tests of one module."""

from tests.support.system import gateway, system, system_env, system_probe

__all__ = ["gateway", "system", "system_env", "system_probe"]
