"""Reading YAML safely and remembering where everything is."""
from engine.source import parse_text


def problems_of(text: str) -> list[str]:
    return [str(p) for p in parse_text(text, "f.yaml")[1]]


def test_values_and_keys_carry_their_line_and_column():
    [doc], problems = parse_text("kind: entity\nname: company\nfields:\n  name:   {type: string}\n", "f.yaml")
    assert problems == []
    assert str(doc.loc("/name")) == "f.yaml:2:7"
    assert str(doc.key_loc("/fields/name")) == "f.yaml:4:3"
    assert str(doc.loc("/fields/name/type")) == "f.yaml:4:18"
    # an unknown pointer falls back to its nearest ancestor
    assert str(doc.loc("/fields/name/missing")) == "f.yaml:4:11"


def test_several_documents_per_file_keep_their_own_lines():
    docs, _ = parse_text("kind: role\nname: a\n---\nkind: role\nname: b\n", "f.yaml")
    assert [d.name for d in docs] == ["a", "b"]
    assert str(docs[1].loc("/name")) == "f.yaml:5:7"


def test_syntax_error_is_a_located_problem_not_a_traceback():
    assert problems_of("kind: entity\nfields: [a, b\nname: x\n") == [
        "f.yaml:3:5: invalid YAML: while parsing a flow sequence did not find expected ',' or ']' [yaml.syntax]"
    ]


def test_duplicate_keys_are_reported_where_the_second_one_is():
    assert problems_of("kind: role\nname: a\nname: b\n") == [
        "f.yaml:3:1: duplicate key 'name' (first given at line 2) [yaml.duplicate-key]"
    ]


def test_python_tags_are_refused():
    assert problems_of("kind: !!python/object/apply:os.system ['echo hi']\nname: !!python/name:os.system x\n") == [
        "f.yaml:1:7: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' [yaml.tag]",
        "f.yaml:2:7: unsupported YAML value: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/name:os.system' [yaml.tag]",
    ]


def test_alias_bomb_is_stopped():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh"))
    problems = problems_of(bomb)
    assert len(problems) == 1 and "[yaml.too-large]" in problems[0]


def test_yaml_11_booleans_do_not_eat_keys_and_dates_stay_text():
    [doc], _ = parse_text("on: [created]\nwhen: 2026-01-31\n", "f.yaml")
    assert doc.data == {"on": ["created"], "when": "2026-01-31"}


def test_control_characters_are_located():
    assert problems_of("kind: role\nname: a\x00b\n") == ["f.yaml:2:8: character U+0000 is not allowed in YAML text [yaml.character]"]


def test_plain_values_read_as_yaml_1_1_says():
    [doc], _ = parse_text("a: 42\nb: 0755\nc: 0x1f\nd: 1_000\ne: 1:30\nf: -5\ng: Yes\nh: off\ni: ~\nj: 2.5\nk: '42'\n", "f.yaml")
    assert doc.data == {"a": 42, "b": 493, "c": 31, "d": 1000, "e": 90, "f": -5, "g": True, "h": False, "i": None, "j": 2.5, "k": "42"}


def test_explicit_tag_on_text_it_cannot_read_is_a_located_problem():
    assert problems_of("kind: role\nname: !!int abc\nlabel: !!bool maybe\n") == [
        "f.yaml:2:7: 'abc' is not a valid int [yaml.tag]",
        "f.yaml:3:8: 'maybe' is not a valid bool [yaml.tag]",
    ]
