"""The USR naming contract infer relies on: `infer__<model>__<output>` is field `<model>__<output>` of
namespace `infer`, the writer and the reader agree on it, and no namespace contains "__"."""

from __future__ import annotations

import pyarrow as pa
import pytest

from dnadesign.core.errors import InputError
from dnadesign.usr.schema import check_derived_name, check_namespace
from tests.infer.conftest import make_dataset


def test_model_columns_are_written_and_read_in_the_infer_namespace(root):
    ds = make_dataset(root, 5, seed=31)
    ids = ds.scan().collect()["id"].to_list()
    ds.write_overlay("infer", pa.table({"id": ids, "infer__evo2_7b__ll_mean": [float(i) for i in range(5)],
                                        "infer__markov6__ll": [-float(i) for i in range(5)]}))
    frame = ds.scan(namespaces=["infer"]).collect().sort("id")
    got = dict(zip(frame["id"].to_list(), frame["infer__evo2_7b__ll_mean"].to_list(), strict=True))
    assert got == {i: float(n) for n, i in enumerate(ids)}
    assert ds.manifest().namespaces() == ["infer"]


def test_a_namespace_never_contains_a_double_underscore():
    assert check_derived_name("infer__regulondb__lexa_best", "infer") == "infer__regulondb__lexa_best"
    assert check_namespace("usr_state") == "usr_state"
    for bad in ("infer__regulondb", "infer_", "_infer", "Infer"):
        with pytest.raises(InputError, match="invalid namespace"):
            check_namespace(bad)
    with pytest.raises(InputError, match="belongs to namespace 'infer'"):
        check_derived_name("infer__regulondb__x", "infer__regulondb")
