"""Round-trip YAML: load a config, change some values, write it back with every comment kept.

Used where `dense` rewrites a user's config (`workspace init`, `config migrate`). The mapping and
sequence objects are `dict` / `list` subclasses, so code that edits plain parsed YAML works on
them unchanged. The source's indentation is detected and reused; quotes and flow style
(`{a: 1}`, `[x, y]`) are kept; long lines are never re-wrapped.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from ..core.errors import ConfigError


def _null(representer: Any, _: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _yaml(mapping: int = 2, sequence: int = 2, offset: int = 0) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=mapping, sequence=max(sequence, offset + 2), offset=offset)
    y.representer.add_representer(type(None), _null)  # `key: null`, not `key:`
    return y


def _mapping_indent(text: str) -> int:
    """Spaces per nesting level of mappings: the smallest indent of an indented `key:` line."""
    indents = [len(m.group(1)) for m in re.finditer(r"^( +)[A-Za-z0-9_\"'][^:#\n]*:", text, re.M)]
    return min(indents) if indents else 2


class Document:
    """A parsed YAML document and how to write it back the way it was written."""

    def __init__(self, data: Any, mapping: int, sequence: int, offset: int):
        self.data = data
        self.layout = (mapping, sequence, offset)

    def dump(self, header: str = "") -> str:
        """The document as text (comments kept), after an optional header of `# ...` lines."""
        buf = io.StringIO()
        _yaml(*self.layout).dump(self.data, buf)
        return header + buf.getvalue()


def loads(text: str, where: str = "config") -> Document:
    """Parse YAML text for round-tripping; a syntax error is a ConfigError naming the line."""
    try:
        _, seq_indent, offset = load_yaml_guess_indent(text)
        layout = (_mapping_indent(text), seq_indent or 2, offset or 0)
        data = _yaml(*layout).load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML{at}: {problem}") from None
    return Document(data, *layout)


def load(path: Path) -> Document:
    """Parse a YAML file for round-tripping (see `loads`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found", hint="check the path") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return loads(text, str(path))


def mapping(data: dict | None = None) -> CommentedMap:
    """A new mapping node (keeps insertion order; accepts comments)."""
    return CommentedMap(data or {})


def sequence(items: list | None = None, flow: bool = False) -> CommentedSeq:
    """A new sequence node; `flow=True` writes it as `[a, b]`."""
    seq = CommentedSeq(items or [])
    if flow:
        seq.fa.set_flow_style()
    return seq


def plain(value: Any) -> Any:
    """A deep copy as plain dicts, lists, str, int and float (for validation with pydantic)."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value
