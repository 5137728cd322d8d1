"""Transformations: every class and operation, chains, PV arguments and $null rules."""
from __future__ import annotations

import hashlib
import time
from typing import Iterator

import pytest

from sipcore.mod import Module
from sipcore.pv import PvError, parse_format, parse_pv, vars as pvvars
from sipcore.pv.transforms import Transform, core_hash, parse_transform
from sipcore.testing import make_ctx

MSG = """\
INVITE sip:+4915112345678@example.com;user=phone SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKtr1
From: "Bob B" <sip:bob:secret@biloxi.com:5062;transport=tcp;lr;maddr=10.1.1.1;ttl=5;method=INVITE;r2=on?subject=x&priority=urgent>;tag=f1
To: <sip:alice@example.com>
Call-ID: tr-1@10.0.0.1
CSeq: 1 INVITE
Contact: "Al" <sip:alice@10.0.0.9:5070>;q=0.7;expires=60, <sip:alice@10.0.0.8>
Content-Type: application/sdp
Content-Length: 24

v=0
o=- 1 1 IN IP4 a
s=-
"""


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    pvvars.reset_vars()
    yield
    pvvars.reset_vars()


def tr(value: object, chain: str) -> object:
    """Apply `{...}` chain to VALUE through $var(in), exactly as a cfg would write it."""
    ctx = make_ctx(MSG)
    pvvars.VARS["in"] = value  # type: ignore[assignment]
    return parse_pv(f"$(var(in){chain})").get(ctx)


S_CASES = [
    ("abcdef", "{s.len}", 6), (12345, "{s.len}", 5), ("", "{s.len}", 0),
    ("42abc", "{s.int}", 42), ("-7", "{s.int}", -7), ("abc", "{s.int}", 0), (9, "{s.int}", 9),
    ("+1 (555) 12-34", "{s.numeric}", "15551234"),
    ("abc", "{s.md5}", hashlib.md5(b"abc").hexdigest()),
    ("abc", "{s.sha1}", hashlib.sha1(b"abc").hexdigest()),
    ("abc", "{s.sha256}", hashlib.sha256(b"abc").hexdigest()),
    ("abc", "{s.sha384}", hashlib.sha384(b"abc").hexdigest()),
    ("abc", "{s.sha512}", hashlib.sha512(b"abc").hexdigest()),
    ("abc", "{s.corehash}", "7167810"), ("a84b4c76e66710@pc33.atlanta.com", "{s.corehash,16}", "14"),
    ("AbC", "{s.tolower}", "abc"), ("AbC", "{s.toupper}", "ABC"),
    ("abcdef", "{s.substr,1,3}", "bcd"), ("abcdef", "{s.substr,-4,0}", "cdef"),
    ("abcdef", "{s.substr,1,-1}", None), ("abcdef", "{s.substr,2,100}", "cdef"),
    ("abcdef", "{s.substr,-4,2}", "cd"), ("abcdef", "{s.substr,-2,5}", "ef"),
    ("abcdef", "{s.substr,6,1}", None), ("abcdef", "{s.substr,-7,1}", None),
    ("a,b,c", "{s.select,1,,}", "b"), ("a,b,c", "{s.select,-1,,}", "c"),
    ("a;b;c", "{s.select,0,;}", "a"), ("a,b", "{s.select,5,,}", ""),
    ("a b\tc", "{s.select,2,\\s}", "c"), ("a b", "{s.select,1,\\w}", "b"),
    ("+4912345", "{s.strip,3}", "12345"), ("abc", "{s.strip,5}", ""),
    ("12345", "{s.striptail,2}", "123"), ("abc", "{s.striptail,9}", ""),
    ("user@host", "{s.stripto,@}", "@host"), ("userhost", "{s.stripto,@}", ""),
    ("1234", "{s.prefixes}", "1,12,123,1234"), ("1234", "{s.prefixes,2}", "1,12"),
    ("123", "{s.prefixes.quoted}", "'1','12','123'"),
    ("a-b-c", "{s.replace,-,+}", "a+b+c"), ("a-b-c", "{s.rm,-}", "abc"),
    ("  x y \t", "{s.trim}", "x y"), ("  x ", "{s.rtrim}", "  x"), ("  x ", "{s.ltrim}", "x "),
    (" a b\tc ", "{s.rmws}", "abc"),
    ('"quoted"', "{s.unquote}", "quoted"), ("<sip:a@b>", "{s.unbracket}", "sip:a@b"),
    ("noquote", "{s.unquote}", "noquote"),
    ("a.b.c", "{s.count,.}", 2),
    ("user@host@x", "{s.before,@}", "user"), ("user@host@x", "{s.after,@}", "host@x"),
    ("user@host@x", "{s.rbefore,@}", "user@host"), ("user@host@x", "{s.rafter,@}", "x"),
    ("nohit", "{s.before,@}", "nohit"), ("nohit", "{s.after,@}", ""),
    ("a\nb\nc", "{s.rm,\\n}", "abc"), ("(x)", "{s.unbracket}", "x"), ("[x]", "{s.unbracket}", "x"),
    ("abc", "{s.encode.hexa}", "616263"), ("616263", "{s.decode.hexa}", "abc"),
    ("zz", "{s.decode.hexa}", None),
    ("hello?", "{s.encode.base64}", "aGVsbG8/"), ("aGVsbG8/", "{s.decode.base64}", "hello?"),
    ("ab", "{s.encode.base64t}", "YWI"), ("YWI", "{s.decode.base64t}", "ab"),
    ("hello?", "{s.encode.base64url}", "aGVsbG8_"), ("aGVsbG8_", "{s.decode.base64url}", "hello?"),
    ("ab", "{s.encode.base64urlt}", "YWI"), ("YWI", "{s.decode.base64urlt}", "ab"),
    ("hello", "{s.encode.base58}", "Cn8eVZg"), ("Cn8eVZg", "{s.decode.base58}", "hello"),
    ("a'b\"c\\d", "{s.escape.common}", "a\\'b\\\"c\\\\d"),
    ("a\\'b\\\"c\\\\d", "{s.unescape.common}", "a'b\"c\\d"),
    ("a b@c", "{s.escape.user}", "a%20b%40c"), ("a%20b%40c", "{s.unescape.user}", "a b@c"),
    ("a b;c", "{s.escape.param}", "a%20b%3Bc"), ("a%20b%3Bc", "{s.unescape.param}", "a b;c"),
    ('a,"b"', "{s.escape.csv}", '"a,""b"""'),
    ("a b&c=d", "{s.urlencode.param}", "a+b%26c%3Dd"),
    ("a+b%26c%3Dd", "{s.urldecode.param}", "a b&c=d"),
    (0, "{s.ftime,%Y}", time.strftime("%Y", time.localtime(0))),
    ("ABCdef", "{s.tolower}{s.substr,0,3}{s.toupper}", "ABC"),
    (" 12 ", "{s.trim}{s.int}", 12),
]


@pytest.mark.parametrize("value,chain,expected", S_CASES,
                         ids=[f"{c[1]}:{c[0]!r}" for c in S_CASES])
def test_string_class(value: object, chain: str, expected: object) -> None:
    assert tr(value, chain) == expected


URI = "sip:bob:secret@biloxi.com:5062;transport=tcp;lr;maddr=10.1.1.1;ttl=5;method=INVITE;r2=on"
URI_CASES = [
    ("{uri.user}", "bob"), ("{uri.host}", "biloxi.com"), ("{uri.domain}", "biloxi.com"),
    ("{uri.passwd}", "secret"), ("{uri.port}", "5062"),
    ("{uri.params}", "transport=tcp;lr;maddr=10.1.1.1;ttl=5;method=INVITE;r2=on"),
    ("{uri.param,maddr}", "10.1.1.1"), ("{uri.param,nope}", ""),
    ("{uri.transport}", "tcp"), ("{uri.ttl}", "5"), ("{uri.maddr}", "10.1.1.1"),
    ("{uri.method}", "INVITE"), ("{uri.lr}", ""), ("{uri.r2}", "on"), ("{uri.uparam}", ""),
    ("{uri.scheme}", "sip"), ("{uri.tosocket}", "tcp:biloxi.com:5062"),
    ("{uri.duri}", "sip:biloxi.com:5062;transport=tcp"), ("{uri.saor}", "sip:bob@biloxi.com"),
    ("{uri.suri}", "sip:bob@biloxi.com:5062;transport=tcp"),
]


@pytest.mark.parametrize("chain,expected", URI_CASES, ids=[c[0] for c in URI_CASES])
def test_uri_class(chain: str, expected: object) -> None:
    assert tr(URI, chain) == expected


def test_uri_class_misc() -> None:
    assert tr("sip:a@b?subject=x&priority=urgent", "{uri.headers}") == "subject=x&priority=urgent"
    assert tr("sip:+49123@example.com;user=phone", "{uri.uparam}") == "phone"
    assert tr("sip:a@example.com;gr=urn:uuid:1", "{uri.gr}") == "urn:uuid:1"
    assert tr("sip:example.com", "{uri.user}") == ""
    assert tr("sip:example.com", "{uri.port}") == ""
    assert tr("sip:example.com", "{uri.tosocket}") == "udp:example.com:5060"
    assert tr("sip:example.com", "{uri.saor}") == "sip:example.com"
    assert tr("sip:a@example.com;", "{uri.user}") == "a"                # trailing ';'
    assert tr("", "{uri.user}") is None
    assert tr("not a uri", "{uri.user}") is None
    ctx = make_ctx(MSG)
    assert parse_pv("$(ru{uri.user})").get(ctx) == "+4915112345678"
    assert parse_pv("$(ru{uri.uparam})").get(ctx) == "phone"
    assert parse_pv("$(hdr(Contact){nameaddr.uri}{uri.port})").get(ctx) == "5070"
    assert parse_pv("$(fu{uri.headers})").get(ctx) == "subject=x&priority=urgent"


PARAM_CASES = [
    ("a=1;b=2;c", "{param.value,b}", "2"), ("a=1;b=2;c", "{param.value,c}", ""),
    ("a=1;b=2;c", "{param.value,B}", "2"), ("a=1;b=2", "{param.value,x}", ""),
    (";a=1;b=2", "{param.value,a}", "1"), ("a=1,b=2", "{param.value,b,,}", "2"),
    ("a=1;b=2;c", "{param.valueat,1}", "2"), ("a=1;b=2", "{param.valueat,5}", ""), ("a=1;b=2;", "{param.count}", 2),
    ("a=1;b=2;c", "{param.name,2}", "c"), ("a=1;b=2;c", "{param.name,-1}", "c"),
    ("a=1&b=2", "{param.name,1,&}", "b"),
    ("a=1;b=2", "{param.in,b}", 1), ("a=1;b=2", "{param.in,z}", 0),
    ("a=1;b=2;c", "{param.count}", 3), ("a=1&b=2", "{param.count,&}", 2), ("", "{param.count}", None),
    ('a="x;y";b=2', "{param.value,a}", "x;y"),
]


@pytest.mark.parametrize("value,chain,expected", PARAM_CASES,
                         ids=[f"{c[1]}:{c[0]}" for c in PARAM_CASES])
def test_param_class(value: str, chain: str, expected: object) -> None:
    assert tr(value, chain) == expected


def test_nameaddr_and_tobody() -> None:
    na = '"Alice A" <sip:alice@example.com:5070>;tag=abc;x=1'
    # Kamailio keeps the quotes of the display name (strip them with {s.unquote})
    assert tr(na, "{nameaddr.name}") == '"Alice A"'
    assert tr(na, "{nameaddr.name}{s.unquote}") == "Alice A"
    assert tr(na, "{nameaddr.uri}") == "sip:alice@example.com:5070"
    assert tr(na, "{nameaddr.len}") == na.index(">") + 1
    assert tr("sip:bare@example.com", "{nameaddr.uri}") == "sip:bare@example.com"
    assert tr("sip:bare@example.com", "{nameaddr.name}") == ""
    assert tr(na, "{tobody.uri}") == "sip:alice@example.com:5070"
    assert tr(na, "{tobody.display}") == '"Alice A"'
    assert tr(na, "{tobody.tag}") == "abc"
    assert tr(na, "{tobody.user}") == "alice"
    assert tr(na, "{tobody.host}") == "example.com"
    assert tr(na, "{tobody.params}") == "tag=abc;x=1"
    assert tr("<sip:a@b>", "{tobody.tag}") == ""
    assert tr("<sip:a@b", "{nameaddr.uri}") is None
    ctx = make_ctx(MSG)
    assert parse_pv("$(hdr(To){tobody.user})").get(ctx) == "alice"
    assert parse_pv("$(hdr(From){tobody.tag})").get(ctx) == "f1"
    assert parse_pv("$(ct{nameaddr.name})").get(ctx) == '"Al"'
    assert parse_pv("$(hdr(Contact){nameaddr.uri}{uri.param,q})").get(ctx) == ""
    assert parse_pv("$(hdr(Contact){param.value,q})").get(ctx) == "0.7"


def test_line_class() -> None:
    body = "v=0\r\no=- 1 1 IN IP4 a\r\ns=-\r\n"
    assert tr(body, "{line.count}") == 3
    assert tr("a\nb", "{line.count}") == 2
    assert tr(body, "{line.at,1}") == "o=- 1 1 IN IP4 a"
    assert tr(body, "{line.at,-1}") == "s=-"
    assert tr(body, "{line.at,9}") == ""
    assert tr(body, "{line.sw,s=}") == "s=-"
    assert tr(body, "{line.sw,m=}") == ""
    ctx = make_ctx(MSG)
    assert parse_pv("$(rb{line.count})").get(ctx) == 3
    assert parse_pv("$(rb{line.sw,o=}{s.select,4, })").get(ctx) == "IP4"


def test_sql_class_accepts_null() -> None:
    assert tr("O'Brien", "{sql.val}") == "'O\\'Brien'"
    assert tr(5, "{sql.val}") == "5"
    assert tr(5, "{sql.val.str}") == "'5'"
    ctx = make_ctx(MSG)
    assert parse_pv("$(du{sql.val})").get(ctx) == "NULL"
    assert parse_pv("$(du{sql.val.int})").get(ctx) == "0"
    assert parse_pv("$(du{sql.val.str})").get(ctx) == "''"


def test_re_subst() -> None:
    assert tr("sip:123@a.com", "{re.subst,/^sip:([0-9]+)@(.*)$/tel:\\1;d=\\2/}") == \
        "tel:123;d=a.com"
    assert tr("aAbBaA", "{re.subst,/a/x/g}") == "xAbBxA"
    assert tr("aAbBaA", "{re.subst,/a/x/gi}") == "xxbBxx"
    assert tr("aAbBaA", "{re.subst,/a/x/}") == "xAbBaA"
    assert tr("a,b,c", "{re.subst,/,/;/g}") == "a;b;c"            # commas stay in the expr
    assert tr("a{2}", "{re.subst,#a\\{2\\}#b#}") == "b"          # braces inside the expr
    assert tr("x/y", "{re.subst,#/#|#}") == "x|y"
    for bad in ("{re.subst}", "{re.subst,/a/b}", "{re.subst,/(/x/}", "{re.subst,/a/b/q}",
                "{re.nope,/a/b/}"):
        with pytest.raises(PvError):
            parse_pv(f"$(var(in){bad})")


def test_urialias() -> None:
    assert tr("sip:10.0.0.1:5070;transport=tcp", "{urialias.encode}") == "10.0.0.1~5070~2"
    assert tr("10.0.0.1~5070~2", "{urialias.decode}") == "sip:10.0.0.1:5070;transport=tcp"
    assert tr("10.0.0.1~5060~1", "{urialias.decode}") == "sip:10.0.0.1:5060"
    assert tr("nope", "{urialias.decode}") is None


def test_null_input_gives_null() -> None:
    ctx = make_ctx(MSG)
    for chain in ("{s.len}", "{s.tolower}", "{uri.user}", "{param.count}", "{line.count}",
                  "{s.md5}{s.len}"):
        assert parse_pv(f"$(du{chain})").get(ctx) is None


def test_pv_arguments_evaluated_per_message() -> None:
    ctx = make_ctx(MSG)
    pvvars.VARS["in"] = "abcdef"
    pvvars.VARS["n"] = 2
    spec = parse_pv("$(var(in){s.substr,$var(n),2})")
    assert spec.get(ctx) == "cd"
    pvvars.VARS["n"] = 4
    assert spec.get(ctx) == "ef"
    pvvars.VARS["sep"] = "d"
    assert parse_pv("$(var(in){s.select,0,$var(sep)})").get(ctx) == "abc"
    pvvars.VARS["n"] = "x"
    assert spec.get(ctx) is None                        # a bad dynamic int argument: $null
    assert parse_pv("$(ru{param.value,$var(sep)})").get(ctx) == ""


def test_transform_in_format_and_examples() -> None:
    ctx = make_ctx(MSG)
    f = parse_format("u=$(rU{s.substr,-4,0}) k=$(ci{s.md5}{s.substr,0,8}) "
                     "h=$(hfl(Via)[0]{s.select,0,;})")
    k = hashlib.md5(b"tr-1@10.0.0.1").hexdigest()[:8]
    assert f.eval(ctx) == f"u=5678 k={k} h=SIP/2.0/UDP 10.0.0.1:5060"
    assert parse_pv("$(hdr(Via)[0]{s.tolower}{s.len})").get(ctx) == \
        len("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKtr1")


@pytest.mark.parametrize("bad", ["{s}", "{s.}", "{s.nope}", "{nope.x}", "{s.substr,1}",
                                 "{s.substr,a,1}", "{s.len,1}", "{s.md5,x}",
                                 "{uri.param}", "{line.at,x}"])
def test_parse_errors(bad: str) -> None:
    with pytest.raises(PvError):
        parse_pv(f"$(var(x){bad})")


def test_module_transformation_class() -> None:
    from sipcore.mod.loader import ModuleRegistry

    class _Reg(ModuleRegistry):
        def __init__(self, mods: list[Module]) -> None:  # no core function table needed
            self._mods = {m.name: m for m in mods}

    m = Module("trmod")

    def factory(op: str, args: str | None):  # type: ignore[no-untyped-def]
        if op == "rev":
            return lambda ctx, v: str(v)[::-1]
        if op == "wrap":
            class Wrap(Transform):
                def apply(self, ctx, v):  # type: ignore[no-untyped-def]
                    return f"{args}{v}{args}"
            return Wrap()
        raise ValueError(f"unknown transformation {{x.{op}}}")

    m.transform("x", factory)
    reg = _Reg([m])
    ctx = make_ctx(MSG)
    assert parse_pv("$(ci{x.rev})", reg).get(ctx) == "1.0.0.01@1-rt"
    assert parse_pv("$(rd{x.wrap,*}{s.len})", reg).get(ctx) == len("*example.com*")
    with pytest.raises(PvError, match="unknown transformation"):
        parse_pv("$(ci{x.nope})", reg)
    with pytest.raises(PvError):
        parse_pv("$(ci{x.rev})")
    assert isinstance(parse_transform("s.len"), Transform)
    assert core_hash("") == 0
