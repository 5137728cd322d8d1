"""Layout of a scan result and the scanner error table, shared by both scanners.

Runs in: every process that parses SIP, and the build (cffi_build/build_sipparse.py loads this
file by path and generates the matching C enums/defines). Pure data, no imports.

A scan result is a flat list of ints: FIXED header slots (indices below), then HDR_STRIDE ints
per header line: type, folded, name_start, name_end, value_start, value_end, line_end.
Both the C scanner and sipcore.msg.pyparser produce exactly this list (tests hold them to it);
slots from HOT_FIRST on are an optional cache the C scanner fills (-1 = not computed).
"""
from __future__ import annotations

KIND_REQUEST = 1
KIND_REPLY = 2

# fixed slots (index into the scan list)
S_KIND = 0
S_FL_START = 1  # first byte of the first line (after leading CRLFs)
S_M_S = 2  # request: method span; reply: empty
S_M_E = 3
S_U_S = 4  # request: R-URI span
S_U_E = 5
S_V_S = 6  # SIP-Version span
S_V_E = 7
S_STATUS = 8  # reply status code, 0 for requests
S_R_S = 9  # reply reason span
S_R_E = 10
S_FL_END = 11  # first byte after the first line's LF
S_HDR_END = 12  # offset of the empty line that ends the header block
S_BODY = 13  # first body byte
S_MSG_END = 14  # end of the message (body_off + Content-Length, or datagram end)
S_CLEN = 15  # Content-Length value, -1 when absent
S_NHDRS = 16
# hot-field cache (C only; pyparser leaves -1): spans into the buffer, -2 = known absent
S_FROMTAG_S = 17
S_FROMTAG_E = 18
S_TOTAG_S = 19
S_TOTAG_E = 20
S_BRANCH_S = 21
S_BRANCH_E = 22
S_CSEQ_NUM = 23
S_CSEQ_M_S = 24
S_CSEQ_M_E = 25
S_CONTACT_S = 26
S_CONTACT_E = 27
S_CALLID_S = 28
S_CALLID_E = 29
HOT_FIRST = 17
FIXED = 32

# per-header slots
H_TYPE = 0
H_FOLDED = 1
H_NS = 2
H_NE = 3
H_VS = 4
H_VE = 5
H_END = 6
HDR_STRIDE = 7

# (C enum name, reason, status hint); code = -(index + 1)
ERRORS: tuple[tuple[str, str, int], ...] = (
    ("TOO_BIG", "message too large", 513),
    ("EMPTY", "empty message", 400),
    ("NO_FIRST_LINE_END", "first line not terminated", 400),
    ("BAD_FIRST_LINE", "malformed first line", 400),
    ("BAD_METHOD", "malformed request method", 400),
    ("BAD_RURI", "malformed Request-URI in first line", 400),
    ("BAD_VERSION", "unsupported SIP version", 505),
    ("BAD_STATUS", "malformed reply status code", 400),
    ("BAD_CHAR", "control character in first line", 400),
    ("NO_HDR_END", "header block not terminated", 400),
    ("BAD_HDR_LINE", "line folding without a header", 400),
    ("BAD_HDR_NAME", "malformed header name", 400),
    ("BAD_EOL", "bare CR in header block", 400),
    ("TOO_MANY_HDRS", "too many headers", 400),
    ("BAD_CL", "malformed Content-Length", 400),
    ("MULTI_CL", "conflicting Content-Length headers", 400),
    ("SHORT_BODY", "body shorter than Content-Length", 400),
)
