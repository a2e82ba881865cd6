"""Rules the test suite keeps so that it says the same thing on every machine."""

from __future__ import annotations

import re

import pytest

from common import ROOT, require_extra


def test_a_missing_test_extra_skips_outside_ci_and_fails_in_ci(monkeypatch):
    missing = "ava_detect_no_such_extra"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"needs {missing} from the test extras"):
        require_extra(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI installs the test extras"):
        require_extra(missing)
    assert require_extra("json").dumps([1]) == "[1]"  # present: the module itself


def test_test_files_import_no_conftest():
    """Shared values come from ``common.py`` or fixtures: importing ``conftest`` as a module loads it a
    second time (a second copy of its session fixtures) and works only from some folders."""
    offenders = [path.name for path in sorted((ROOT / "tests").glob("*.py"))
                 if re.search(r"^\s*(from|import)\s+(tests\.)?conftest\b", path.read_text(encoding="utf-8"), re.M)]
    assert offenders == []
