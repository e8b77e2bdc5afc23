"""keepalived's shell-like tokenizer for script strings (spec §1.3, alloc_strvec_quoted_escaped).

Both ``"..."`` and ``'...'`` quote and may join mid-token (``abcd" efg h "mnop`` is one word);
backslash escapes work inside and outside quotes: ``\\a \\b \\E \\f \\n \\r \\t \\v``, octal
``\\nnn`` (1-3 digits), hex ``\\xXX``, control ``\\cC``, and ``\\C`` -> ``C`` for anything else.
No variable expansion, no globbing: the result is an argv to ``execve``, never a shell line.
"""

from __future__ import annotations

_SIMPLE = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_BLANKS = " \t\v\f\r\n"


class ScriptQuoteError(ValueError):
    """A script string with an unterminated quote or a dangling backslash."""


def _escape(text: str, i: int) -> tuple[str, int]:
    """Decode the escape whose backslash is at ``text[i]``; return (char, next index)."""
    if i + 1 >= len(text):
        raise ScriptQuoteError(f"String '{text}': backslash at end of string")
    c = text[i + 1]
    if c in _SIMPLE:
        return _SIMPLE[c], i + 2
    if c in "01234567":
        j = i + 1
        while j < len(text) and j < i + 4 and text[j] in "01234567":
            j += 1
        return chr(int(text[i + 1 : j], 8) & 0xFF), j
    if c == "x":
        j = i + 2
        while j < len(text) and j < i + 4 and text[j] in "0123456789abcdefABCDEF":
            j += 1
        if j == i + 2:
            return "x", i + 2
        return chr(int(text[i + 2 : j], 16)), j
    if c == "c" and i + 2 < len(text):
        return chr(ord(text[i + 2]) & 0x1F), i + 3
    return c, i + 2


def split(text: str) -> list[str]:
    """Split ``text`` into words with keepalived's script quoting rules."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in _BLANKS:
            i += 1
        if i >= n:
            break
        word: list[str] = []
        while i < n and text[i] not in _BLANKS:
            ch = text[i]
            if ch in "\"'":
                end_quote = ch
                i += 1
                while True:
                    if i >= n:
                        raise ScriptQuoteError(f"String '{text}': missing terminating {end_quote}")
                    ch = text[i]
                    if ch == end_quote:
                        i += 1
                        break
                    if ch == "\\":
                        dec, i = _escape(text, i)
                        word.append(dec)
                    else:
                        word.append(ch)
                        i += 1
            elif ch == "\\":
                dec, i = _escape(text, i)
                word.append(dec)
            else:
                word.append(ch)
                i += 1
        words.append("".join(word))
    return words
