"""A model that failed to load, or killed the process while loading, is not the default again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import cli
from app.chat.models import ModelChoice, choose_model
from app.errors import ModelFileError
from app.hub import installed, load_failures

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def imported(tiny_llama2: Path, tmp_path: Path) -> installed.InstalledModel:
    copy = tmp_path / "llama-2-tiny.gguf"
    copy.write_bytes(tiny_llama2.read_bytes())
    return installed.import_model(copy)


def test_a_failed_load_is_remembered_and_skipped_at_start(
    imported: installed.InstalledModel,
) -> None:
    assert installed.default_model() == imported
    with pytest.raises(ModelFileError), load_failures.loading(imported.path):
        raise ModelFileError("llama.cpp could not load it")
    assert load_failures.failure(imported.path) == "llama.cpp could not load it"
    fallback = installed.default_model()
    assert fallback is not None and fallback.builtin  # the starter
    choice = choose_model(last_used=str(imported.path))
    assert choice.path == str(fallback.path)
    why = choice.note
    assert imported.name in why and "could not load" in why and "started with" in why
    # A success (the user picked it again and it loaded) clears the record.
    with load_failures.loading(imported.path):
        pass
    assert load_failures.failure(imported.path) is None
    assert choose_model(last_used=str(imported.path)) == ModelChoice(str(imported.path),
                                                                      imported.name)


def test_a_process_that_dies_while_loading_leaves_the_model_marked(
    imported: installed.InstalledModel, llama_desk_home: Path
) -> None:
    code = ("import os, sys\nfrom app.hub import load_failures\n"
            "with load_failures.loading(sys.argv[1]):\n    os.abort()  # as GGML_ASSERT does\n")
    env = {**os.environ, "LLAMA_DESK_HOME": str(llama_desk_home)}
    proc = subprocess.run([sys.executable, "-c", code, str(imported.path)], cwd=ROOT, env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode < 0  # killed by SIGABRT
    assert load_failures.failure(imported.path) == load_failures.CRASHED
    choice = choose_model(last_used=str(imported.path))
    assert choice.name == "Starter (SmolLM2 135M)" and "ended unexpectedly" in choice.note


def test_a_load_still_running_elsewhere_is_not_a_failure(imported: installed.InstalledModel) -> None:
    with load_failures.loading(imported.path):
        assert load_failures.failure(imported.path) is None  # this very process is loading it
    assert load_failures.failure(imported.path) is None


def test_a_replaced_file_is_tried_afresh(imported: installed.InstalledModel) -> None:
    with pytest.raises(RuntimeError), load_failures.loading(imported.path):
        raise RuntimeError("boom")
    assert load_failures.failure(imported.path) == "RuntimeError: boom"
    os.utime(imported.path, ns=(1, 1))  # downloaded again: another version of the file
    assert load_failures.failure(imported.path) is None


def test_models_lists_the_failure(imported: installed.InstalledModel,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ModelFileError), load_failures.loading(imported.path):
        raise ModelFileError("the file is damaged")
    assert cli.main(["models"]) == 0
    assert "failed to load last time: the file is damaged" in capsys.readouterr().out


def test_the_record_is_private_and_survives_a_damaged_record_file(
    imported: installed.InstalledModel,
) -> None:
    load_failures.record_path().write_text("[not an object")
    assert load_failures.failure(imported.path) is None
    with pytest.raises(ModelFileError), load_failures.loading(imported.path):
        raise ModelFileError("x")
    assert load_failures.record_path().stat().st_mode & 0o777 == 0o600
