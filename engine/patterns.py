"""ECMA-262 regular expressions (what JSON Schema's `pattern` means) run on Python's `re`.

JSON Schema says a `pattern` is an ECMA-262 regular expression, and other validators (ajv,
RJSF in the browser) run it as JavaScript does, with the `u` flag. Python's `re` reads the same
text differently in ways that let bad values through: `$` also matches before a final newline
(so "ACM0001\\n" matches `^[A-Z]{3}[0-9]{4}$`), `\\d` and `\\w` take any Unicode digit or letter,
`.` takes a carriage return. `translate` rewrites an ECMA pattern into the Python pattern that
matches the same strings; every validator in Tailor compiles patterns through `compile` here.
"""
from __future__ import annotations

import re
from functools import lru_cache

# ECMA-262's WhiteSpace and LineTerminator code points: what `\s` matches there.
_SPACE = "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_LINE_END = "\\n\\r\\u2028\\u2029"
_CLASSES = {"d": "0-9", "w": "A-Za-z0-9_", "s": _SPACE}  # \D, \W, \S are their complements
_CONTROL = {"t": "\\t", "n": "\\n", "v": "\\x0b", "f": "\\x0c", "r": "\\r"}
_SYNTAX = set("^$\\.*+?()[]{}|/-")  # the characters an ECMA `u` pattern may escape to mean themselves
_HEX = re.compile(r"[0-9A-Fa-f]+")


class PatternError(ValueError):
    """A pattern that is not an ECMA-262 regular expression (or uses what Python cannot match alike)."""


def _escape(src: str, i: int, in_class: bool) -> tuple[str, int]:
    """The Python spelling of the escape starting at src[i] (a backslash), and the index after it."""
    if i + 1 >= len(src):
        raise PatternError("the pattern ends with a lone backslash")
    c = src[i + 1]
    if c.lower() in _CLASSES:
        body = _CLASSES[c.lower()]
        if c.islower():
            return (body if in_class else f"[{body}]"), i + 2
        if in_class:
            raise _Negated(c.lower())
        return f"[^{body}]", i + 2
    if c in _CONTROL:
        return _CONTROL[c], i + 2
    if c in "bB":
        return ("\\x08" if in_class else "\\" + c), i + 2  # with re.ASCII, \b is ECMA's (ASCII) word boundary
    if c == "0" and not (i + 2 < len(src) and src[i + 2].isdigit()):
        return "\\x00", i + 2
    if c.isdigit():
        if in_class:
            raise PatternError(f"'\\{c}' inside a character class is not allowed")
        m = re.match(r"[0-9]+", src[i + 1:])
        return "\\" + m.group(0), i + 1 + len(m.group(0))
    if c == "x":
        digits = src[i + 2:i + 4]
        if len(digits) != 2 or not _HEX.fullmatch(digits):
            raise PatternError("'\\x' needs two hex digits")
        return "\\x" + digits, i + 4
    if c == "u":
        if src.startswith("{", i + 2):
            end = src.find("}", i + 3)
            digits = src[i + 3:end] if end > 0 else ""
            if not digits or not _HEX.fullmatch(digits) or int(digits, 16) > 0x10FFFF:
                raise PatternError("'\\u{...}' needs a code point in hex")
            return f"\\U{int(digits, 16):08x}", end + 1
        digits = src[i + 2:i + 6]
        if len(digits) != 4 or not _HEX.fullmatch(digits):
            raise PatternError("'\\u' needs four hex digits")
        return "\\u" + digits, i + 6
    if c == "c":
        letter = src[i + 2:i + 3]
        if not letter.isascii() or not letter.isalpha():
            raise PatternError("'\\c' needs a letter")
        return f"\\x{ord(letter) % 32:02x}", i + 3
    if c == "k" and src.startswith("<", i + 2) and not in_class:
        end = src.find(">", i + 3)
        if end < 0:
            raise PatternError("'\\k<' has no closing '>'")
        return f"(?P={src[i + 3:end]})", end + 1
    if c in _SYNTAX:
        return "\\" + c, i + 2
    raise PatternError(f"'\\{c}' is not an escape in an ECMA-262 pattern")


class _Negated(Exception):
    """\\D, \\W or \\S met inside a character class: the class is rewritten as an alternation."""

    def __init__(self, letter: str):
        self.letter = letter


def _class(src: str, i: int) -> tuple[str, int]:
    """The Python spelling of the character class starting at src[i] ('['), and the index after it."""
    negate = src.startswith("^", i + 1)
    j = i + 2 if negate else i + 1
    if src.startswith("]", j):  # [] matches nothing and [^] anything in ECMA; Python reads ']' there as a literal
        return ("[\\s\\S]" if negate else "(?!)"), j + 1
    parts: list[str] = []
    complements: list[str] = []
    while j < len(src) and src[j] != "]":
        c = src[j]
        if c == "\\":
            try:
                text, j = _escape(src, j, in_class=True)
            except _Negated as neg:
                complements.append(_CLASSES[neg.letter])
                j += 2
                continue
            parts.append(text)
        elif c in "[&~|":  # literal in an ECMA class; Python warns that it may one day mean set operations
            parts.append("\\" + c)
            j += 1
        else:
            parts.append(c)
            j += 1
    if j >= len(src):
        raise PatternError(f"unterminated character set at position {i}")  # re's own words, as before patterns were ECMA
    body = "".join(parts)
    if not complements:
        return f"[{'^' if negate else ''}{body}]", j + 1
    # [a\S] is "a, or not a space": an alternation; [^a\S] is "not a and a space": a lookahead and a class
    alternatives = ([f"[{body}]"] if body else []) + [f"[^{c}]" for c in complements]
    if not negate:
        return "(?:" + "|".join(alternatives) + ")", j + 1
    return "(?:" + "".join(f"(?!{a})" for a in alternatives) + "[\\s\\S])", j + 1


def translate(src: str) -> str:
    """The Python `re` pattern (to compile with re.ASCII) that matches what the ECMA-262 pattern `src` matches."""
    out: list[str] = []
    i = 0
    while i < len(src):
        c = src[i]
        if c == "\\":
            text, i = _escape(src, i, in_class=False)
            out.append(text)
        elif c == "[":
            text, i = _class(src, i)
            out.append(text)
        elif c == "$":
            out.append("\\Z")  # end of the text only: Python's `$` also matches before a final newline
            i += 1
        elif c == ".":
            out.append(f"[^{_LINE_END}]")
            i += 1
        elif c == "(" and src.startswith("?", i + 1):
            for ecma, python in (("(?:", "(?:"), ("(?=", "(?="), ("(?!", "(?!"), ("(?<=", "(?<="), ("(?<!", "(?<!"), ("(?<", "(?P<")):
                if src.startswith(ecma, i):
                    out.append(python)
                    i += len(ecma)
                    break
            else:
                raise PatternError(f"'{src[i:i + 3]}' is not a group in an ECMA-262 pattern")
        elif c in "*+?}" and src[i + 1:i + 2] == "+":
            raise PatternError("possessive quantifiers ('*+', '++') are not ECMA-262")
        else:
            out.append(c)
            i += 1
    return "".join(out)


@lru_cache(maxsize=2048)
def compile(src: str, ignore_case: bool = False) -> re.Pattern[str]:  # the module's one verb, as in re
    """`src`, an ECMA-262 pattern, compiled so that `.search` answers as JavaScript's `RegExp(src, "u").test` does."""
    try:
        return re.compile(translate(src), re.ASCII | (re.IGNORECASE if ignore_case else 0))
    except re.error as exc:
        raise PatternError(str(exc)) from None


def problem(src: str) -> str | None:
    """Why `src` is not a pattern Tailor can match as ECMA-262 does, or None when it is."""
    try:
        compile(src)
    except PatternError as exc:
        return str(exc)
    return None
