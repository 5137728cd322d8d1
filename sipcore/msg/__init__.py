"""The SIP message layer (sans-I/O): parse_msg, SipMsg, header/URI parsers, edits, builders.

Runs in: every process that handles SIP (workers, timer, tests). Touches no shared state and
imports only the stdlib, sipcore.errors and its own cffi extension (through _cparse).
Contract: docs/design/msg-api.md.
"""
from __future__ import annotations

from sipcore.errors import ParseError
from sipcore.msg.builder import build_reply, build_request, gen_to_tag, make_branch
from sipcore.msg.headers import (
    COMPACT_FORMS, ContactList, ContentType, CSeq, DigestCredentials, HdrType, Header, NameAddr,
    Via, hdr_type_of, parse_contacts, parse_content_type, parse_cseq, parse_date, parse_digest,
    parse_expires, parse_max_forwards, parse_nameaddr, parse_nameaddr_list, parse_via,
)
from sipcore.msg.msg import (
    METHOD_ACK, METHOD_BYE, METHOD_CANCEL, METHOD_DELETE, METHOD_GET, METHOD_IDS, METHOD_INFO,
    METHOD_INVITE, METHOD_KDMQ, METHOD_MESSAGE, METHOD_NOTIFY, METHOD_OPTIONS, METHOD_OTHER,
    METHOD_POST, METHOD_PRACK, METHOD_PUBLISH, METHOD_PUT, METHOD_REFER, METHOD_REGISTER,
    METHOD_SUBSCRIBE, METHOD_UNDEF, METHOD_UPDATE, SipMsg,
)
from sipcore.msg.params import parse_params
from sipcore.msg.parser import SCANNER, parse_msg
from sipcore.msg.uri import SipURI, parse_uri, uri_equal

__all__ = [
    "parse_msg", "SipMsg", "Header", "HdrType", "ParseError", "parse_uri", "SipURI", "uri_equal",
    "parse_via", "Via", "parse_nameaddr", "parse_nameaddr_list", "NameAddr", "parse_cseq", "CSeq",
    "parse_contacts", "ContactList", "parse_digest", "DigestCredentials", "parse_params",
    "parse_content_type", "ContentType", "parse_expires", "parse_max_forwards", "parse_date",
    "hdr_type_of", "COMPACT_FORMS", "build_reply", "build_request", "make_branch", "gen_to_tag",
    "SCANNER", "METHOD_IDS",
    "METHOD_UNDEF", "METHOD_INVITE", "METHOD_CANCEL", "METHOD_ACK", "METHOD_BYE", "METHOD_INFO",
    "METHOD_REGISTER", "METHOD_SUBSCRIBE", "METHOD_NOTIFY", "METHOD_MESSAGE", "METHOD_OPTIONS",
    "METHOD_PRACK", "METHOD_UPDATE", "METHOD_REFER", "METHOD_PUBLISH", "METHOD_KDMQ",
    "METHOD_GET", "METHOD_POST", "METHOD_PUT", "METHOD_DELETE", "METHOD_OTHER",
]
