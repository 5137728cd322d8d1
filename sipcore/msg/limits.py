"""Protocol limits of the SIP message layer.

Runs in: every process that parses SIP (UDP/TCP workers, timer for replies it builds, tests).
Touches no shared state. The C scanner gets these values at build time: cffi_build/build_sipparse.py
reads this file and generates `cffi_build/csrc/sipparse_gen.h`; the cdef declares them as
`#define NAME ...` so the compiled values can be checked against this file at import
(`sipcore.msg._cparse`). Never type these numbers anywhere else.
"""
from __future__ import annotations

# Largest SIP message accepted (bytes, whole datagram / framed TCP message); Kamailio BUF_SIZE.
MAX_MSG_SIZE = 65535
# Most header lines in one message (folded lines count once).
MAX_HEADERS = 256
# Most Via values the Python layer parses for one message (msg.vias).
MAX_VIAS = 64
# Content-Length digits (leading zeros excluded): 9 digits keeps values in 32 bits.
MAX_CL_DIGITS = 9
# Largest CSeq number (RFC 3261 8.1.1.5: "MUST be less than 2**31").
MAX_CSEQ = 2**31 - 1
# Largest Max-Forwards value (RFC 3261 20.22: 0-255).
MAX_MAX_FORWARDS = 255
# Largest delta-seconds value (Expires, Retry-After, expires param).
MAX_DELTA_SECONDS = 2**32 - 1
