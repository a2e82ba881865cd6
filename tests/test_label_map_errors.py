"""Label maps and ids: an id that is not a whole number in 0..2**31-1, a block with ``id`` and
``label_id`` that differ, a duplicate id or field, an empty name: each an error with file:line.
Integer columns of the AVA CSVs get the same bound (no silent wrap-around to another class)."""

from __future__ import annotations


import pytest

from common import FIXTURES
from ava_detect.cli import main
from ava_detect.data import ava_files as af
from ava_detect.errors import AvaDetectError

EXCERPT = FIXTURES / "eval" / "ava_val_excerpt"



BAD_MAPS = [
    ("id too large", 'item {\n  name: "a"\n  id: 99999999999999999999999\n}\n', 3, "too large"),
    ("id just past int32", 'item { name: "a" id: 1 }\nitem {\n name: "b"\n id: 2147483648\n}\n', 4, "too large"),
    ("id and label_id differ", 'label {\n  name: "a"\n  label_id: 3\n  id: 4\n}\n', 4, "label_id 3 and id 4"),
    ("duplicate id", 'item { name: "a" id: 7 }\n\nitem {\n  name: "b"\n  id: 7\n}\n', 5, "first on line 1"),
    ("duplicate across dialects", 'label { name: "a" label_id: 2 }\nitem { name: "b" id: 2 }\n', 2, "duplicate class id 2"),
    ("negative id", 'item {\n  name: "a"\n  id: -1\n}\n', 3, "integer >= 0"),
    ("hex id", 'item { name: "a" id: 0x10 }\n', 1, "integer >= 0"),
    ("float id", 'item { name: "a" id: 1.0 }\n', 1, "integer >= 0"),
    ("non-ASCII digits", 'item { name: "a" id: ٣ }\n', 1, "integer >= 0"),
    ("field twice", 'item {\n  name: "a"\n  name: "b"\n  id: 1\n}\n', 3, "given twice"),
    ("empty name", 'item {\n  name: ""\n  id: 1\n}\n', 2, "empty 'name'"),
]


@pytest.mark.parametrize("name,text,line,fragment", BAD_MAPS, ids=[b[0] for b in BAD_MAPS])
def test_bad_label_map_names_file_and_line(tmp_path, name, text, line, fragment):
    p = tmp_path / "map.pbtxt"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(AvaDetectError) as e:
        af.read_labelmap(p)
    assert (e.value.path, e.value.line) == (str(p), line) and fragment in e.value.message, str(e.value)


def test_equal_id_and_label_id_and_largest_id_are_accepted(tmp_path):
    p = tmp_path / "map.pbtxt"
    p.write_text('label { name: "a" label_id: 5 id: 5 }\nitem { name: "b" id: 2147483647 }\n')
    assert af.read_labelmap(p).ids == (5, 2147483647)


def test_eval_refuses_a_bad_label_map_in_one_line(tmp_path, capsys):
    p = tmp_path / "map.pbtxt"
    p.write_text('item { name: "a" id: 12 }\nitem { name: "b" label_id: 79 id: 80 }\n')
    out = tmp_path / "r.json"
    rc = main(["eval", "--gt", str(EXCERPT / "gt.csv"), "--pred", str(EXCERPT / "pred.csv"),
               "--labelmap", str(p), "--json", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"{p}:2:" in err[0] and not out.exists()


@pytest.mark.parametrize("row,fragment", [
    ("v1,0902,0.1,0.1,0.5,0.5,1e30,0", "action id is too large"),
    ("v1,0902,0.1,0.1,0.5,0.5,4294967297,0", "action id is too large"),
    ("v1,0902,0.1,0.1,0.5,0.5,12,1e20", "person id is too large"),
    ("v1,99999999999,0.1,0.1,0.5,0.5,12,0", "timestamp is too large"),
])
def test_csv_ids_too_large_for_an_integer(tmp_path, row, fragment):
    p = tmp_path / "gt.csv"
    p.write_text("v1,0902,0.1,0.1,0.5,0.5,12,0\n" + row + "\n")
    with pytest.raises(AvaDetectError, match=fragment) as e:
        af.read_ground_truth(p)
    assert e.value.line == 2
