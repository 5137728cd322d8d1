"""sdpops helpers on strings: codec lists, the static codec name table, and the token rules of
Kamailio's sdpops (sdpops_data.c: str_find_token, sdpops_build_ids_list; sdpops_mod.c:
sdp_codec_in_str), kept exactly so lists like "0, 8" or "8,,0" behave as they do there.

Runs in: SIP workers (pure functions). Shared state: none.
"""
from __future__ import annotations

from sipcore.msg.sdp import SdpInfo

# RFC 3551 static payload types by encoding name (Kamailio sdpops_codecsmap_table). A name found
# here maps to these ids only, whatever the SDP's a=rtpmap lines say.
CODECS: dict[str, str] = {
    "PCMU": "0", "GSM": "3", "G723": "4", "DVI4": "5,6,16,17", "LPC": "7", "PCMA": "8",
    "G722": "9", "L16": "10,11", "QCELP": "12", "CN": "13", "MPA": "14", "G728": "15",
    "G729": "18",
}
MAX_IDS_LEN = 128       # Kamailio SDPOPS_MAX_LIST_SIZE: the built list of ids, with commas
MAX_IDS_PER_NAME = 16   # SDPOPS_CIDS_SIZE: ids collected from a=rtpmap for one name (more: none)

_WS = " \t\r\n"


def find_tokens(text: str, delim: str) -> list[str]:
    """The tokens Kamailio's str_find_token() loop yields: one leading DELIM is skipped, then
    leading whitespace; a token ends at DELIM, CR, LF or NUL (trailing spaces stay in it); an
    empty token ends the list ("8,,0" -> ["8"])."""
    out: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == delim:
            i += 1
        while i < n and text[i] in _WS:
            i += 1
        j = i
        while j < n and text[j] not in (delim, "\r", "\n", "\0"):
            j += 1
        if j == i:
            return out
        out.append(text[i:j])
        i = j


def codec_in_list(codecs: str, codec: str, delim: str) -> bool:
    """CODEC is an element of the DELIM-separated CODECS, compared as written (Kamailio
    sdp_codec_in_str: no trimming, so "0, 8" does not contain "8")."""
    if not codecs or not codec:
        return False
    return codec in codecs.split(delim)


def codec_position(payloads: str, codec: str) -> int:
    """Index of the first space-separated element of PAYLOADS equal to CODEC, -1 if none
    (Kamailio sdp_remove_str_codec_id's scan)."""
    at_start = True
    n = len(codec)
    for i, c in enumerate(payloads):
        if at_start and payloads.startswith(codec, i) and (
                i + n == len(payloads) or payloads[i + n] == " "):
            return i
        at_start = c == " "
    return -1


def ids_of_names(info: SdpInfo, names: str) -> str:
    """The comma-separated payload type ids for the comma-separated codec NAMES: the static
    table first, else the a=rtpmap ids of that encoding in any stream (case-insensitive). ""
    when there are none or the list would exceed MAX_IDS_LEN (Kamailio sdpops_build_ids_list)."""
    ids: list[str] = []
    size = 0
    for name in find_tokens(names, ","):
        static = CODECS.get(name.upper())
        if static is not None:
            found = [static]
        else:
            found = [p.rtp_payload for st in info.streams for p in st.payload_attrs
                     if p.rtp_enc.lower() == name.lower()]
            if len(found) > MAX_IDS_PER_NAME:
                found = []              # Kamailio gives up on the name ("notfound")
        for pt in found:
            if size + len(pt) >= MAX_IDS_LEN:
                return ""
            ids.append(pt)
            size += len(pt) + 1
    return ",".join(ids)
