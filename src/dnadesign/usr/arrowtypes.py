"""Arrow types as the manifest records them: parse the text back and compare types by structure.

The manifest stores a derived column's type as Arrow's text form (`str(pa.DataType)`). Text is a
poor identity: the same logical type prints differently depending on who wrote it (a list's child
field is `item` in Arrow and `element` after a Parquet round trip; polars writes `large_string`).
`same_type` compares structure and ignores such spellings.
"""

from __future__ import annotations

import re

import pyarrow as pa

_SIMPLE: dict[str, pa.DataType] = {
    "null": pa.null(), "bool": pa.bool_(), "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(),
    "int64": pa.int64(), "uint8": pa.uint8(), "uint16": pa.uint16(), "uint32": pa.uint32(), "uint64": pa.uint64(),
    "halffloat": pa.float16(), "float": pa.float32(), "double": pa.float64(), "string": pa.string(),
    "large_string": pa.large_string(), "string_view": pa.string_view(), "binary": pa.binary(),
    "large_binary": pa.large_binary(), "binary_view": pa.binary_view(), "date32[day]": pa.date32(),
    "date64[ms]": pa.date64(), "month_day_nano_interval": pa.month_day_nano_interval(),
}
_WORD = re.compile(r"[a-z_0-9]+")


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"cannot parse Arrow type {self.s!r}: {what} at position {self.i}")

    def expect(self, token: str) -> None:
        if not self.s.startswith(token, self.i):
            raise self.fail(f"expected {token!r}")
        self.i += len(token)

    def until(self, stops: str) -> str:
        """Text up to the first stop character at nesting depth 0."""
        depth, start = 0, self.i
        while self.i < len(self.s):
            ch = self.s[self.i]
            if ch in "<([":
                depth += 1
            elif ch in ">)]":
                if depth == 0 and ch in stops:
                    break
                depth -= 1
            elif depth == 0 and ch in stops:
                break
            self.i += 1
        return self.s[start:self.i]

    def field(self) -> pa.Field:
        # a field name may hold spaces or punctuation; it ends at the first ": " at depth 0
        j = self.s.find(": ", self.i)
        if j < 0:
            raise self.fail("expected 'name: type'")
        name = self.s[self.i:j]
        self.i = j + 2
        typ = self.type()
        nullable = True
        if self.s.startswith(" not null", self.i):
            self.i += len(" not null")
            nullable = False
        return pa.field(name, typ, nullable=nullable)

    def type(self) -> pa.DataType:
        m = _WORD.match(self.s, self.i)
        if not m:
            raise self.fail("expected a type name")
        word = m.group(0)
        self.i = m.end()
        if word in ("list", "large_list", "list_view", "large_list_view", "fixed_size_list"):
            self.expect("<")
            child = self.field()
            self.expect(">")
            if word == "fixed_size_list":
                self.expect("[")
                size = int(self.until("]"))
                self.expect("]")
                return pa.list_(child, size)
            return {"list": pa.list_, "large_list": pa.large_list, "list_view": pa.list_view,
                    "large_list_view": pa.large_list_view}[word](child)
        if word == "struct":
            self.expect("<")
            fields = []
            while not self.s.startswith(">", self.i):
                fields.append(self.field())
                if self.s.startswith(", ", self.i):
                    self.i += 2
            self.expect(">")
            return pa.struct(fields)
        if word == "map":
            self.expect("<")
            key = self.type()
            self.expect(", ")
            item = self.type()
            self.expect(">")
            return pa.map_(key, item)
        if word == "dictionary":
            self.expect("<values=")
            values = self.type()
            self.expect(", indices=")
            indices = self.type()
            self.expect(", ordered=")
            ordered = self.until(">") == "1"
            self.expect(">")
            return pa.dictionary(indices, values, ordered)
        if word in ("timestamp", "time32", "time64", "duration"):
            self.expect("[")
            inner = self.until("]")
            self.expect("]")
            unit, _, tz = inner.partition(", tz=")
            if word == "timestamp":
                return pa.timestamp(unit, tz=tz or None)
            return {"time32": pa.time32, "time64": pa.time64, "duration": pa.duration}[word](unit)
        if word in ("decimal32", "decimal64", "decimal128", "decimal256"):
            self.expect("(")
            precision, scale = (int(x) for x in self.until(")").split(", "))
            self.expect(")")
            return getattr(pa, word)(precision, scale)
        if word == "fixed_size_binary":
            self.expect("[")
            size = int(self.until("]"))
            self.expect("]")
            return pa.binary(size)
        if word in ("date32", "date64"):
            self.expect("[")
            word += f"[{self.until(']')}]"
            self.expect("]")
        if word in _SIMPLE:
            return _SIMPLE[word]
        raise self.fail(f"unknown type {word!r}")


def parse_type(text: str) -> pa.DataType:
    """The Arrow type whose `str()` is `text` (raises ValueError for text it cannot read)."""
    p = _Parser(text.strip())
    typ = p.type()
    if p.i != len(p.s):
        raise p.fail("unexpected trailing text")
    return typ


def normalize(t: pa.DataType) -> pa.DataType:
    """A canonical spelling: list child fields named `item`, no `large_`/view variants, no dictionaries,
    every nested field nullable. Two types with equal normal forms hold the same values."""
    if pa.types.is_dictionary(t):
        return normalize(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_fixed_size_list(t):
        return pa.list_(normalize(t.value_type), t.list_size)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return pa.list_(normalize(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(normalize(t.key_type), normalize(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, normalize(f.type)) for f in t])
    return t


def same_type(a: pa.DataType | str, b: pa.DataType | str) -> bool:
    """Whether two types (or recorded type texts) are the same logical type, spelling aside."""
    try:
        ta = parse_type(a) if isinstance(a, str) else a
        tb = parse_type(b) if isinstance(b, str) else b
    except ValueError:
        return _loose_text(str(a)) == _loose_text(str(b))
    return bool(normalize(ta).equals(normalize(tb)))


def _loose_text(text: str) -> str:
    text = re.sub(r"\b(large_list|list_view|large_list_view|fixed_size_list|list)<[^:<>]+: ", lambda m: m.group(1).replace("large_", "").replace("_view", "") + "<item: ", text)
    return text.replace("large_string", "string").replace("string_view", "string").replace(" not null", "")
