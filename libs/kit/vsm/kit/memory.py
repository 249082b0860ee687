"""Giving back what start-up used and freed: a service's idle RSS is what it keeps.

Importing, validating settings, building the HTTP app and declaring the topology allocate
and free a great deal; CPython returns its freed arenas to the C allocator, but glibc keeps
the freed pages of its heap mapped until asked. `release()` collects garbage and asks
(`malloc_trim`), once the service is up; on a C library without it, it only collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

__all__ = ["release"]


def release() -> None:
    """Collect garbage, then return the C heap's free pages to the system where glibc can."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim(0)
