"""The probe of hostile inputs (``tests/probe_bad_inputs.py``): every case of its table, through every
command, is handled as the README promises."""

from __future__ import annotations

from probe_bad_inputs import cases, probe


def test_every_hostile_input_is_handled(tmp_path, capsys):
    summary = probe(tmp_path / "work")
    printed = capsys.readouterr().out
    assert summary["tried"] == len(cases()) >= 100
    assert summary["problems"] == 0, printed


def test_the_table_covers_every_command():
    from ava_detect.cli import COMMANDS

    tried = {c.argv[0] if c.argv[0] != "prep" else f"prep {c.argv[1]}" for c in cases()}
    assert {name for name, _, _ in COMMANDS if name != "prep"} <= tried
    from ava_detect.commands.prep import STEPS

    assert {f"prep {step}" for step, _, _ in STEPS} <= tried
    names = [c.name for c in cases()]
    assert len(names) == len(set(names))
