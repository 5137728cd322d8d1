"""Bounded mutation fuzzing of both scanners and the lazy parsers: random truncation, byte
flips, duplicated and oversized headers, NUL bytes, CR/LF injection. Only ParseError may escape;
the C and Python scanners must agree on every input. Fixed seed, a few seconds in total.
Runs in: pytest only (`-m fuzz` selects it; it is part of the normal run too).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sipcore.errors import ParseError
from sipcore.msg import build_reply, parse_msg
from sipcore.msg.parser import c_scan, py_scan
from sipcore.msg.pyparser import ScanError
from tests.paths import ROOT, TORTURE, TORTURE_MANIFEST
from tests.services import C_SCANNER_MISSING, skip

SEED = 4475
ROUNDS = 8000

BASE = [
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\nTo: \"Bob\" <sip:bob@biloxi.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@[2001:db8::1]:5060>;expires=60\r\n"
    b"Authorization: Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:b\", response=\"x\"\r\n"
    b"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
    b"SIP/2.0 200 OK\r\nv: SIP/2.0/TCP h;branch=z9hG4bKa, SIP/2.0/UDP g:5062;received=1.2.3.4\r\n"
    b"t: <sip:b@c>;tag=99\r\nf: sip:a@b;tag=1\r\ni: x@y\r\nCSeq: 2 REGISTER\r\nm: *\r\nl: 0\r\n\r\n",
]
BASE += [(TORTURE / m["file"]).read_bytes()
         for m in json.loads(TORTURE_MANIFEST.read_text())["messages"]]

INTERESTING = [b"\x00", b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b";", b",", b"<", b">", b'"',
               b"\\", b"[", b"]", b"@", b"=", b"%", b"\xff", b"\r\n ", b"\r\n\r\n", b"9" * 12]


def mutate(rng: random.Random, buf: bytes) -> bytes:
    b = bytearray(buf)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if not b:
            b += rng.choice(INTERESTING)
            continue
        i = rng.randrange(len(b))
        if op == 0:  # truncate
            del b[i:]
        elif op == 1:  # flip a byte
            b[i] = rng.randrange(256)
        elif op == 2:  # insert an interesting token
            b[i:i] = rng.choice(INTERESTING)
        elif op == 3:  # duplicate a header line
            s = b.find(b"\n", i)
            e = b.find(b"\n", s + 1) if s >= 0 else -1
            if s >= 0 and e > s:
                b[e + 1 : e + 1] = b[s + 1 : e + 1]
        elif op == 4:  # oversized header
            b[i:i] = b"X-Big: " + b"a" * rng.choice((100, 5000, 70000)) + b"\r\n"
        elif op == 5:  # delete a range
            del b[i : i + rng.randint(1, 20)]
        else:  # NUL bytes
            b[i:i] = b"\x00" * rng.randint(1, 3)
    return bytes(b)


def exercise(raw: bytes, scanner: str) -> object:
    """Everything a worker may touch; returns a comparable view. Only ParseError may escape."""
    view: list[object] = []
    try:
        msg = parse_msg(raw, scanner=scanner)
    except ParseError as e:
        return ("rejected", e.reason, e.offset)
    view.append(msg.summary())
    for attr in ("from_tag", "to_tag", "via1_branch", "contact_uri", "callid", "cseq", "vias",
                 "contacts", "routes", "record_routes", "max_forwards", "expires",
                 "content_type", "parsed_ruri", "method"):
        try:
            view.append(repr(getattr(msg, attr)))
        except ParseError as e:
            view.append(("error", attr, e.reason))
    try:
        msg.auth_credentials()
        msg.parse_all()
        view.append("parse_all ok")
    except ParseError as e:
        view.append(("parse_all", e.reason))
    msg.add_header("X-Fuzz: 1")
    msg.set_body(b"x")
    assert parse_msg(msg.build(), scanner=scanner).body == b"x"
    if msg.is_request:
        try:
            build_reply(msg, 404, "Not Here")
        except ParseError:
            pass
    return view


@pytest.mark.fuzz
@pytest.mark.parametrize("scanner", ["py"] + (["c"] if c_scan is not None else []))
def test_fuzz_only_parse_errors(scanner: str) -> None:
    rng = random.Random(SEED)
    for _ in range(ROUNDS):
        raw = mutate(rng, rng.choice(BASE))
        exercise(raw, scanner)


@pytest.mark.fuzz
@pytest.mark.skipif(c_scan is None, reason=C_SCANNER_MISSING)
def test_fuzz_scanners_agree() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(ROUNDS):
        raw = mutate(rng, rng.choice(BASE))
        try:
            c = list(c_scan(raw))
        except ScanError as e:
            c = ["error", e.code, e.offset]
        try:
            p = list(py_scan(raw))
        except ScanError as e:
            p = ["error", e.code, e.offset]
        if c[0] != "error":
            c = c[:17] + c[32:]
            p = p[:17] + p[32:]
        assert c == p, raw
        # the C hot-field cache must agree with the Python parsers
        assert exercise(raw, "c") == exercise(raw, "py"), raw


@pytest.mark.fuzz
def test_c_scanner_under_sanitizers(tmp_path: Path) -> None:
    """cffi_build/csrc/sipparse_fuzz.c: sp_scan on exact-size heap copies of mutated inputs,
    built with AddressSanitizer + UBSan (skipped without a compiler that has them)."""
    import shutil
    import subprocess

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        skip("c-sanitizers", "no C compiler (gcc or cc) on PATH")
    csrc = ROOT / "cffi_build" / "csrc"
    exe = tmp_path / "sp_fuzz"
    build = subprocess.run(
        [cc, "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
         f"-I{csrc}", str(csrc / "sipparse_fuzz.c"), str(csrc / "sipparse.c"), "-o", str(exe)],
        capture_output=True, text=True, check=False)
    if build.returncode != 0:
        skip("c-sanitizers", f"{cc} cannot build with -fsanitize=address,undefined: "
                             f"{build.stderr.strip()[-300:]}")
    files = []
    for i, raw in enumerate(BASE):
        f = tmp_path / f"in{i}.sip"
        f.write_bytes(raw)
        files.append(str(f))
    run = subprocess.run([str(exe), "1500", str(SEED), *files], capture_output=True, text=True,
                         check=False, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "accepted" in run.stdout
