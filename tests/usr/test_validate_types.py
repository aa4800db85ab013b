"""`usr validate` compares column types by structure: Arrow's list value-field names do not matter."""

from __future__ import annotations

import pyarrow as pa

from dnadesign.usr.validate import same_type

PLACEMENT = pa.struct([("regulator", pa.string()), ("start", pa.int64()), ("strands", pa.list_(pa.string()))])


def test_list_value_field_names_do_not_make_a_type_different() -> None:
    as_written = pa.list_(pa.field("element", PLACEMENT))  # what parquet readers return for dense's placements
    recorded = str(pa.list_(pa.field("item", PLACEMENT)))  # what the manifest recorded on first attach
    assert same_type(as_written, recorded)
    assert same_type(pa.large_list(pa.field("element", pa.float64())), "large_list<item: double>")


def test_a_real_type_change_is_still_reported() -> None:
    changed = pa.list_(pa.field("element", pa.struct([("regulator", pa.string()), ("start", pa.int32()),
                                                      ("strands", pa.list_(pa.string()))])))
    assert not same_type(changed, str(pa.list_(PLACEMENT)))
    assert not same_type(pa.list_(pa.string()), "list<item: int64>")
    assert not same_type(pa.int64(), "double")
