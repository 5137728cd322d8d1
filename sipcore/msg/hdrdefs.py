"""The table of known SIP header types: ids, canonical names, compact forms, aliases.

Runs in: every process that parses SIP (imported by sipcore.msg.headers) and the build
(cffi_build/build_sipparse.py loads this file by path to generate the C name lookup and the
`sp_hdr_type` enum). Pure data, no imports: the one source of header type ids.
Touches no shared state.
"""
from __future__ import annotations

# (enum name, canonical name, compact form or "", extra lower-case aliases)
# The id of each entry is its position. OTHER must stay first (id 0).
HDR_TABLE: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("OTHER", "", "", ()),
    ("VIA", "Via", "v", ()),
    ("FROM", "From", "f", ()),
    ("TO", "To", "t", ()),
    ("CALLID", "Call-ID", "i", ()),
    ("CSEQ", "CSeq", "", ()),
    ("CONTACT", "Contact", "m", ()),
    ("MAXFORWARDS", "Max-Forwards", "", ()),
    ("ROUTE", "Route", "", ()),
    ("RECORDROUTE", "Record-Route", "", ()),
    ("CONTENTTYPE", "Content-Type", "c", ()),
    ("CONTENTLENGTH", "Content-Length", "l", ()),
    ("AUTHORIZATION", "Authorization", "", ()),
    ("PROXYAUTH", "Proxy-Authorization", "", ()),
    ("EXPIRES", "Expires", "", ()),
    ("USERAGENT", "User-Agent", "", ()),
    ("SERVER", "Server", "", ()),
    ("SUPPORTED", "Supported", "k", ()),
    ("REQUIRE", "Require", "", ()),
    ("PROXYREQUIRE", "Proxy-Require", "", ()),
    ("UNSUPPORTED", "Unsupported", "", ()),
    ("ALLOW", "Allow", "", ()),
    ("EVENT", "Event", "o", ()),
    ("ACCEPT", "Accept", "", ()),
    ("ACCEPTLANGUAGE", "Accept-Language", "", ()),
    ("ORGANIZATION", "Organization", "", ()),
    ("PRIORITY", "Priority", "", ()),
    ("SUBJECT", "Subject", "s", ()),
    ("DATE", "Date", "", ()),
    ("WWWAUTH", "WWW-Authenticate", "", ()),
    ("PROXYAUTHENTICATE", "Proxy-Authenticate", "", ()),
    ("CONTENTDISPOSITION", "Content-Disposition", "", ()),
    ("CONTENTENCODING", "Content-Encoding", "e", ()),
    ("DIVERSION", "Diversion", "", ()),
    ("RPID", "Remote-Party-ID", "", ()),
    ("REFERTO", "Refer-To", "r", ()),
    ("REFERREDBY", "Referred-By", "b", ()),
    ("SESSIONEXPIRES", "Session-Expires", "x", ()),
    ("MINSE", "Min-SE", "", ()),
    ("MINEXPIRES", "Min-Expires", "", ()),
    ("PATH", "Path", "", ()),
    ("PRIVACY", "Privacy", "", ()),
    ("PAI", "P-Asserted-Identity", "", ()),
    ("PPI", "P-Preferred-Identity", "", ()),
    ("REASON", "Reason", "", ()),
    ("IDENTITY", "Identity", "y", ()),
    ("ALLOWEVENTS", "Allow-Events", "u", ()),
    ("SIPIFMATCH", "SIP-If-Match", "", ()),
    ("RETRYAFTER", "Retry-After", "", ()),
    ("ACCEPTCONTACT", "Accept-Contact", "a", ()),
    ("REQUESTDISPOSITION", "Request-Disposition", "d", ()),
    ("WARNING", "Warning", "", ()),
)


def name_map() -> dict[str, int]:
    """Lower-case header name (long, compact, alias) -> type id."""
    out: dict[str, int] = {}
    for tid, (_enum, canon, compact, aliases) in enumerate(HDR_TABLE):
        if tid == 0:
            continue
        out[canon.lower()] = tid
        if compact:
            out[compact] = tid
        for a in aliases:
            out[a] = tid
    return out
