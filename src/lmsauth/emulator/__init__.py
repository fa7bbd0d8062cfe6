"""Emulator mode: a control API under ``/_emulator/`` that moves time, injects faults, shows
traffic and resets state, so that client code can be tested against lmsauth without sleeping.

Off by default (``LMSAUTH_EMULATOR``); it never runs with the strict profile, answers only
loopback callers unless told otherwise, and marks every page it serves as an emulator's.
``core.clock`` is process-local, so an emulator is always exactly one process.
"""

from lmsauth.emulator.middleware import CONTROL_PREFIX, EmulatorMiddleware
from lmsauth.emulator.routes import emulator_routes
from lmsauth.emulator.state import EmulatorState

__all__ = ["CONTROL_PREFIX", "EmulatorMiddleware", "EmulatorState", "emulator_routes"]
