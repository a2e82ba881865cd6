"""A config file that is not a valid config is one line naming the file (and the line, where
there is one), exit 2, before any work: never a traceback from the YAML parser, OmegaConf or
the error formatter."""

from __future__ import annotations


import pytest

from ava_detect.cli import main
from ava_detect.config import config_from_dict, load_config
from ava_detect.errors import AvaDetectError



BAD_FILES = [
    # (name, content, line or None, fragment of the message)
    ("scalar section", b"model: 5\n", None, "section 'model' must be a mapping"),
    ("list section", b"train: [1, 2]\n", None, "section 'train' must be a mapping"),
    ("text section", b"data: videos\n", None, "section 'data' must be a mapping"),
    ("alias to itself in a list", b"a: &x [*x]\n", None, "refers to itself"),
    ("alias to itself in a mapping", b"train: &t\n  epochs: 3\n  again: *t\n", None, "refers to itself"),
    ("top-level list", b"- train\n- test\n", None, "mapping of sections"),
    ("top-level text", b"just words\n", None, "mapping of sections"),
    ("syntax error", b"train:\n  epochs: 3\n bad\n", 3, "invalid YAML"),
    ("unclosed bracket", b"data:\n  mean: [0.5, 0.5\n", 3, "invalid YAML"),
    ("tab indentation", b"train:\n\tepochs: 3\n", 2, "invalid YAML"),
    ("control character", b"train:\n  epochs: 3\x01\n", 2, "U+0001"),
    ("undefined alias", b"train:\n  epochs: *nothing\n", 2, "invalid YAML"),
    ("non-UTF-8", b"train:\n  output_dir: r\xe9sultats\n", 2, "not UTF-8"),
    ("base is a number", b"_base_: 5\n", None, "'_base_' must be a file name"),
    ("base is a mapping", b"_base_: {a: 1}\n", None, "'_base_' must be a file name"),
    ("unknown section number", b"5: 3\n", None, "unknown config key '5'"),
]


@pytest.mark.parametrize("name,content,line,fragment", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_config_file_through_the_cli(tmp_path, capsys, name, content, line, fragment):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    out = tmp_path / "run"
    rc = main(["train", "--config", str(cfg), f"train.output_dir={out}"])
    err = capsys.readouterr().err.strip().splitlines()
    where = f"{cfg}:{line}: " if line else f"{cfg}: "
    assert rc == 2 and len(err) == 1 and where in err[0] and fragment in err[0], err
    assert not out.exists()


def test_base_chain_problems_name_the_base_file(tmp_path):
    (tmp_path / "folder.yaml").mkdir()
    top = tmp_path / "top.yaml"
    for base, fragment in (("folder.yaml", "is a folder"), ("missing.yaml", "not found"), ("top.yaml", "includes itself")):
        top.write_text(f"_base_: {base}\n")
        with pytest.raises(AvaDetectError, match=fragment) as e:
            load_config(top)
        assert e.value.path.endswith(base)


def test_config_path_is_a_folder(tmp_path):
    with pytest.raises(AvaDetectError, match="is a folder") as e:
        load_config(tmp_path)
    assert e.value.path == str(tmp_path)


@pytest.mark.parametrize("override,fragment", [
    ("train.lr_steps=&a [*a]", "refers to itself"),
    ("train.epochs.deeper=3", "train.epochs"),
    ("model=5", "section.key=value"),
])
def test_bad_overrides_are_one_line(override, fragment):
    with pytest.raises(AvaDetectError, match=fragment) as e:
        load_config(None, [override])
    assert "\n" not in str(e.value) and "command line" in str(e.value)


@pytest.mark.parametrize("data,fragment", [
    ({"model": 5}, "must be a mapping"),
    ([1, 2], "mapping of config sections"),
    ({"train": {"epochs": "many"}}, "train.epochs"),
])
def test_bad_checkpoint_config(data, fragment):
    with pytest.raises(AvaDetectError, match=fragment) as e:
        config_from_dict(data, source="ckpt.pth")
    assert e.value.path == "ckpt.pth"


def test_empty_section_is_an_empty_mapping(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\ntrain:\n  epochs: 3\n")
    assert load_config(cfg).train.epochs == 3
