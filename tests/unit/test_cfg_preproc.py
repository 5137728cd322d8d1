"""Preprocessor: #!define family, conditionals, substitutions, includes, env defines."""
from __future__ import annotations

import os

import pytest

from sipcore.cfg import compile_text, load_config, parse_text
from sipcore.cfg.lexer import Lexer
from sipcore.cfg.preproc import Preprocessor
from sipcore.errors import ConfigErrors

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "cfg")


def toks(text: str, defines=None):
    pp = Preprocessor()
    for k, v in (defines or {}).items():
        pp.define(k, v)
    lx = Lexer(text, "t.cfg", pp)
    out = [(t.kind, t.value) for t in lx.tokens()][:-1]
    return out, pp


def errors_of(text: str, defines=None) -> list[str]:
    with pytest.raises(ConfigErrors) as ei:
        compile_text(text, "t.cfg", defines)
    return [str(e) for e in ei.value.errors]


def test_define_expands_identifier_tokens_only():
    out, _ = toks('#!define FOO 42\nFOO "FOO" $var(FOO) FOOBAR\n')
    assert out == [("INT", 42), ("STR", "FOO"), ("PV", "$var(FOO)"), ("ID", "FOOBAR")]


def test_define_without_value_expands_to_nothing_and_is_defined():
    out, pp = toks("#!define WITH_X\na WITH_X b\n")
    assert out == [("ID", "a"), ("ID", "b")]
    assert "WITH_X" in pp.defines


def test_define_value_with_string_and_nested_define():
    out, _ = toks('#!define HOST "example.com"\n#!define H2 HOST\nH2\n')
    assert out == [("STR", "example.com")]


def test_define_continuation_line():
    out, _ = toks("#!define LONG 1 + \\\n 2\nLONG\n")
    assert out == [("INT", 1), ("OP", "+"), ("INT", 2)]


def test_redefine_is_error_but_trydef_and_redefine_work():
    errs = errors_of("#!define A 1\n#!define A 2\n")
    assert errs == ['t.cfg:2:1: "A" is already defined (use #!redefine or #!trydef)']
    out, _ = toks("#!define A 1\n#!trydef A 2\n#!trydef B 3\nA B\n")
    assert out == [("INT", 1), ("INT", 3)]
    out, _ = toks("#!define A 1\n#!redefine A 2\n#!redef A 5\nA\n")
    assert out == [("INT", 5)]


def test_def_alias_and_bang_bang_prefix():
    out, _ = toks("!!def X 7\n#!def Y 8\nX Y\n")
    assert out == [("INT", 7), ("INT", 8)]


def test_ifdef_else_nesting():
    text = """
#!define A
#!ifdef A
a1
#!ifdef B
b1
#!else
nb1
#!ifndef C
nc
#!endif
#!endif
#!else
na
#!endif
end
"""
    out, _ = toks(text)
    assert [v for _, v in out] == ["a1", "nb1", "nc", "end"]


def test_ifdef_skips_garbage_and_directives():
    out, pp = toks("#!ifdef NOPE\n  ALTER TABLE x %%% ;\n#!define Z 1\n#!endif\nok\n")
    assert out == [("ID", "ok")]
    assert "Z" not in pp.defines and not pp.errors


def test_unbalanced_endif_and_missing_endif():
    errs = errors_of("debug=1\n#!endif\n")
    assert errs == ["t.cfg:2:1: #!endif without #!ifdef/#!ifndef (unbalanced)"]
    errs = errors_of("#!ifdef X\ndebug=1\n")
    assert errs == ["t.cfg:1:1: unbalanced #!ifdef/#!ifndef: missing #!endif"]
    errs = errors_of("#!else\n")
    assert errs == ["t.cfg:1:1: #!else without #!ifdef/#!ifndef"]


def test_command_line_defines():
    cfg = compile_text("#!ifdef WITH_DEBUG\ndebug=DBG\n#!endif\n", "t.cfg",
                       {"WITH_DEBUG": None, "DBG": "3"})
    assert cfg.globals["debug"] == 3
    cfg = compile_text("#!ifdef WITH_DEBUG\ndebug=3\n#!endif\n", "t.cfg")
    assert cfg.globals["debug"] == 0
    cfg = compile_text("log_name=NAME\n", "t.cfg", {"NAME": '"pk"'})
    assert cfg.globals["log_name"] == "pk"


def test_subst_applies_to_later_strings_only():
    out, _ = toks('"a.example.com"\n#!subst "/example/test/g"\n"x.example.example" ID\n')
    assert out == [("STR", "a.example.com"), ("STR", "x.test.test"), ("ID", "ID")]
    out, _ = toks('#!subst "/EX/y/i"\n"ex-ex"\n')
    assert out == [("STR", "y-ex")]


def test_substdef_and_substdefs():
    out, pp = toks('#!substdef "!MY_DOMAIN!example.com!"\n"sip:u@MY_DOMAIN" MY_DOMAIN\n')
    assert out[0] == ("STR", "sip:u@example.com")
    assert out[1:] == [("ID", "example"), ("OP", "."), ("ID", "com")]
    out, _ = toks('#!substdefs "/DOM/example.com/"\nDOM\n')
    assert out == [("STR", "example.com")]


def test_bad_subst_reports_error():
    errs = errors_of('#!subst "/(unclosed/x/"\n')
    assert len(errs) == 1 and errs[0].startswith("t.cfg:1:1: #!subst: bad regular expression")


def test_defenv_family(monkeypatch):
    monkeypatch.setenv("PYKAM_T_PORT", "5070")
    monkeypatch.delenv("PYKAM_T_NONE", raising=False)
    cfg = compile_text("#!defenv P=PYKAM_T_PORT\nport=P\n#!trydefenv Q=PYKAM_T_NONE\n"
                       "#!defenvs S=PYKAM_T_PORT\nlog_name=S\n", "t.cfg")
    assert cfg.globals["port"] == 5070
    assert cfg.globals["log_name"] == "5070"
    assert "Q" not in cfg.defines
    errs = errors_of("#!defenv PYKAM_T_NONE\n")
    assert errs == ['t.cfg:1:1: #!defenv: environment variable "PYKAM_T_NONE" is not set']


def test_comments_hash_slashes_and_nested_blocks():
    out, _ = toks("a # c1\nb // c2\n/* x /* nested */ still comment */ c\n/* multi\nline */ d\n")
    assert [v for _, v in out] == ["a", "b", "c", "d"]


def test_unterminated_block_comment():
    errs = errors_of("debug=1\n/* never closed\n")
    assert errs == ["t.cfg:2:1: unterminated /* comment"]


def test_directive_inside_block_comment_is_ignored():
    out, pp = toks("/*\n#!define X 1\n*/\nX\n")
    assert out == [("ID", "X")]


def test_unknown_directive():
    assert errors_of("#!frobnicate X\n") == ['t.cfg:1:1: unknown preprocessor directive '
                                            '"#!frobnicate"']


def test_includes_relative_and_missing_import_ignored():
    cfg = load_config(os.path.join(DATA, "inc", "main.cfg"))
    assert cfg.globals["debug"] == 3
    assert cfg.globals["children"] == 2
    assert "MAINDEF" in cfg.defines and "CHILDLEVEL" in cfg.defines


def test_missing_include_file_is_error():
    path = os.path.join(DATA, "inc", "bad_include.cfg")
    with pytest.raises(ConfigErrors) as ei:
        load_config(path)
    (e,) = ei.value.errors
    assert e.pos.file == path and e.pos.line == 2
    assert 'cannot include file "missing.cfg"' in e.message


def test_error_inside_included_file_keeps_its_position():
    with pytest.raises(ConfigErrors) as ei:
        load_config(os.path.join(DATA, "inc", "err_in_include.cfg"))
    (e,) = ei.value.errors
    assert e.pos.file.endswith(os.path.join("sub", "broken.cfg"))
    assert (e.pos.line, e.pos.col) == (2, 1)
    assert e.message == 'unknown core parameter "no_such_param"'
    assert "no_such_param=1" in e.render()


def test_import_file_statement_form(tmp_path):
    (tmp_path / "local.cfg").write_text("children=3\n")
    main = tmp_path / "k.cfg"
    main.write_text('import_file "local.cfg"\nimport_file "absent.cfg"\ndebug=1\n')
    cfg = load_config(str(main))
    assert cfg.globals["children"] == 3 and cfg.globals["debug"] == 1


def test_parse_text_keeps_positions_across_skipped_lines():
    cfg, errors, _ = parse_text("#!ifdef X\n\n\n#!endif\n\n  debug = 2\n", "p.cfg")
    assert not errors
    (item,) = cfg.items
    assert (item.pos.line, item.pos.col) == (6, 3)
