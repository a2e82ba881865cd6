"""The ``ava-detect`` command: help for every command, one-line errors with exit status 2."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from ava_detect import cli


def _subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [name], sub
                for rest, subsub in _subcommands(sub):
                    yield [name, *rest], subsub


def test_help_of_every_command(capsys):
    parser = cli.build_parser()
    commands = list(_subcommands(parser))
    assert [c for c, _ in commands if len(c) == 1], "no commands registered"
    for words, _ in [([], parser), *commands]:
        with pytest.raises(SystemExit) as e:
            cli.main([*words, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith("usage: ava-detect"), words
        assert len(out.splitlines()) > 2


def test_console_script_runs():
    # the installed entry point and `python -m ava_detect` behave the same
    out = subprocess.run([sys.executable, "-m", "ava_detect", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("ava-detect ")


def test_our_errors_are_one_line_with_status_2(capsys, monkeypatch):
    from ava_detect.errors import AvaDetectError

    def failing(args):
        raise AvaDetectError("expected 8 columns, found 3", "gt.csv", 12)

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            name, sub = next(iter(action.choices.items()))
            sub.set_defaults(_run=failing)
            break
    args = [name] + (["synthetic", "--out", "x"] if name == "prep" else [])
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ava-detect {name}: error: gt.csv:12: expected 8 columns, found 3"
    assert "Traceback" not in err


def test_train_and_test_flags_are_config_overrides(tmp_path, monkeypatch, capsys):
    """Every flag of ``train`` and ``test`` goes through the config's validation as an override
    (a flag wins over a trailing ``section.key=value``); the command calls one library function."""
    from ava_detect.engine import testing, trainer

    seen = {}

    def fake_train(cfg, *, resume, progress):
        seen["train"] = (cfg, resume, progress)
        return trainer.TrainResult(output_dir=tmp_path / "run", epochs=1, iterations=2, best_map=0.5, last_map=0.5)

    def fake_test(cfg, weights, output_dir=None, *, progress=None):
        seen["test"] = (cfg, weights, progress)
        return testing.TestResult(result=None, report="REPORT", weights_summary="LOADED", keyframes=3, boxes=4,
                                  seconds=0.5, detections=tmp_path / "d.csv")

    monkeypatch.setattr(trainer, "train", fake_train)
    monkeypatch.setattr(testing, "run_test", fake_test)
    assert cli.main(["train", "--weights", "on", "--output-dir", "0123", "--resume", "train.epochs=2",
                     "train.output_dir=elsewhere"]) == 0
    cfg, resume, progress = seen["train"]
    assert (cfg.train.weights, cfg.train.output_dir, cfg.train.epochs, resume) == ("on", "0123", 2, True)
    assert callable(progress)
    assert cli.main(["test", "--weights", "w.pth", "--output-dir", "out", "--bf16", "--no-progress",
                     "test.bf16=false"]) == 0
    cfg, weights, progress = seen["test"]
    assert (weights, cfg.test.output_dir, cfg.test.bf16, progress) == ("w.pth", "out", True, None)
    out = capsys.readouterr().out
    assert "LOADED" in out and "REPORT" in out and f"wrote {tmp_path / 'd.csv'}" in out
    # the config, flags included, is validated before anything runs: a bad value is a one-line error
    assert cli.main(["train", "--output-dir", "x", "train.epochs=many"]) == 2
