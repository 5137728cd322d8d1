"""sl statistics (group `sl`), Kamailio sl_stats.c names.

Runs in: SIP workers. Shared state: `sipcore.stats` counters named `sl:<name>`.
"""
from __future__ import annotations

from sipcore import stats

GROUP = "sl"
#: every counter of the group, in Kamailio's order
NAMES = ("1xx_replies", "200_replies", "202_replies", "2xx_replies", "300_replies",
         "301_replies", "302_replies", "3xx_replies", "400_replies", "401_replies",
         "403_replies", "404_replies", "407_replies", "408_replies", "483_replies",
         "4xx_replies", "500_replies", "5xx_replies", "6xx_replies", "xxx_replies",
         "sent_replies", "sent_err_replies", "failures", "received_ACKs")

_EXACT = frozenset({200, 202, 300, 301, 302, 400, 401, 403, 404, 407, 408, 483, 500})


def bucket(code: int) -> str:
    """The per-code counter a reply CODE is counted in (one bucket per reply)."""
    if code in _EXACT:
        return f"{code}_replies"
    if 100 <= code < 700:
        return f"{code // 100}xx_replies"
    return "xxx_replies"


def sent(code: int) -> None:
    stats.inc(f"{GROUP}:{bucket(code)}")
    stats.inc(f"{GROUP}:sent_replies")
    if code >= 300:
        stats.inc(f"{GROUP}:sent_err_replies")


def failure() -> None:
    stats.inc(f"{GROUP}:failures")


def filtered_ack() -> None:
    stats.inc(f"{GROUP}:received_ACKs")


def snapshot() -> dict[str, int]:
    return {n: stats.get(f"{GROUP}:{n}") for n in NAMES}
