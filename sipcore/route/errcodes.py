"""Kamailio's negative error codes (src/core/error.h) returned by core functions to the script.

Runs in: every process (constants only). `$rc` shows these values after a failing core function,
so they match Kamailio's numbers.
"""
from __future__ import annotations

E_UNSPEC = -1
E_OUT_OF_MEM = -2
E_BAD_RE = -3
E_BUG = -5
E_CFG = -6
E_NO_SOCKET = -7
E_BAD_VIA = -8
E_BAD_TUPEL = -9
E_SCRIPT = -10
E_EXEC = -11
E_TOO_MANY_BRANCHES = -12
E_BAD_TO = -13
E_INVALID_PARAMS = -14
E_NO_DESTINATION = -19
E_BAD_REQ = -400
E_BAD_URI = -401
E_SEND = -477
E_BAD_ADDRESS = -478
E_BAD_SERVER = -500
