"""Installed-model registry, name resolution for `--model`, the catalogue's offline data and fit plans."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.engine.planner import shape_of_file
from app.errors import ModelFileError, UserError
from app.hub import catalogue, installed
from app.starter import STARTER_NAME
from tests.hub.fixtures import tiny_gguf


def test_starter_is_listed_and_default(starter_model: Path) -> None:
    models = installed.list_installed()
    assert models[0].name == STARTER_NAME and models[0].builtin
    default = installed.default_model()
    assert default is not None and default.path == starter_model
    with pytest.raises(UserError, match="built in"):
        installed.remove_model(STARTER_NAME)


def test_import_resolve_and_remove(tmp_path: Path, starter_model: Path) -> None:
    path = tmp_path / "llama-2-tiny.Q4_K_M.gguf"
    tiny_gguf(path, payload_mib=0.5)
    model = installed.import_model(path)
    assert model.name == "llama-2-tiny.Q4_K_M" and model.source == "imported"
    assert model.quantization == "Q4_K_M" and model.path == path.resolve()
    assert installed.default_model() == model  # the newest added model wins over the starter
    for query in ("llama-2-tiny.Q4_K_M", "LLAMA-2-TINY.q4_k_m", path.name, str(path)):
        assert installed.resolve_model(query).path == path.resolve()
    tiny_gguf(tmp_path / "b.gguf")
    second = installed.import_model(tmp_path / "b.gguf", name="llama-2-tiny.Q4_K_M")
    assert second.name == "llama-2-tiny.Q4_K_M (2)"  # names stay unique
    installed.remove_model(second.name)
    assert (tmp_path / "b.gguf").exists()  # imported files are never deleted
    with pytest.raises(UserError) as info:
        installed.resolve_model("nope")
    assert STARTER_NAME in str(info.value) and "llama-2-tiny.Q4_K_M" in str(info.value)


def test_unregistered_path_resolves_and_bad_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "loose.Q8_0.gguf"
    tiny_gguf(path, payload_mib=0.2)
    loose = installed.resolve_model(str(path))
    assert loose.source == "path" and loose.quantization == "Q8_0"
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(ModelFileError):
        installed.import_model(bad)
    with pytest.raises(UserError):
        installed.resolve_model(str(tmp_path / "missing.gguf"))


def test_downloaded_model_removal_deletes_the_file(tmp_path: Path) -> None:
    from app import paths

    path = paths.models_dir() / "llama-2-7b-chat.Q2_K.gguf"
    tiny_gguf(path, payload_mib=0.2)
    installed.add_download(path, repo_id="TheBloke/Llama-2-7B-Chat-GGUF",
                           filename=path.name, quantization="Q2_K", sha256="00" * 32)
    shape = shape_of_file(installed.resolve_model(path.name).path)
    assert shape.n_layers == 2
    removed = installed.remove_model("llama-2-7b-chat.Q2_K")
    assert removed.source == "hub" and not path.exists()


def test_catalogue_offline_facts() -> None:
    models = catalogue.catalogue()
    assert [m.size_class for m in models[:3]] == ["7B", "13B", "70B"]
    q4_70 = catalogue.find("TheBloke/Llama-2-70B-Chat-GGUF", quant="Q4_K_M")
    assert q4_70 is not None and q4_70.size_bytes == pytest.approx(41.42e9)
    q8_70 = catalogue.find("TheBloke/Llama-2-70B-Chat-GGUF", quant="Q8_0")
    assert q8_70 is not None and q8_70.parts == (
        "llama-2-70b-chat.Q8_0.gguf-split-a", "llama-2-70b-chat.Q8_0.gguf-split-b")
    assert all(len(m.files) == 12 for m in models[:3])


def test_catalogue_is_parsed_once_per_version_of_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    import os

    from app.hub.client import RepoFileInfo, RepoListing

    reads: list[int] = []
    real_load = catalogue.load_cache

    def counting_load() -> dict:
        reads.append(1)
        return real_load()

    monkeypatch.setattr(catalogue, "load_cache", counting_load)
    repo, name = "someone/llama-70b-GGUF", "m.Q4_K_M.gguf"
    assert catalogue.find(repo, filename=name) is None
    assert catalogue.find(repo, filename=name) is None
    assert catalogue.find("TheBloke/Llama-2-7B-Chat-GGUF", quant="Q4_K_M") is not None
    assert len(reads) == 1  # the later calls used the in-memory catalogue

    catalogue.store_listing(RepoListing(repo, "c1", False, (RepoFileInfo(name, 123, "ab"),)))
    found = catalogue.find(repo, filename=name)
    assert found is not None and found.size_bytes == 123  # store_listing invalidated it
    reads.clear()
    assert catalogue.find(repo, filename=name) == found
    assert reads == []

    # another process (the CLI's --refresh) rewrites the file: the new mtime is noticed
    path = catalogue.cache_path()
    data = json.loads(path.read_text("utf-8"))
    data[repo]["files"][name]["size"] = 456
    path.write_text(json.dumps(data), "utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    found = catalogue.find(repo, filename=name)
    assert found is not None and found.size_bytes == 456 and reads == [1]


@pytest.mark.parametrize(("name", "quant"), [
    ("llama-2-7b-chat.Q4_K_M.gguf", "Q4_K_M"),
    ("llama-2-70b-chat.Q6_K.gguf-split-b", "Q6_K"),
    ("Meta-Llama-3-8B-Instruct-IQ2_XS.gguf", "IQ2_XS"),
    ("model-f16.gguf", "F16"),
    ("model.q8_0.gguf", "Q8_0"),
    ("mystery.gguf", "?"),
])
def test_quant_from_file_name(name: str, quant: str) -> None:
    assert catalogue.quant_of(name) == quant


def test_listing_groups_split_parts() -> None:
    files = catalogue.files_from_listing("someone/Llama-2-70B-x", {
        "a.Q6_K.gguf-split-a": {"size": 10, "sha256": "1"},
        "a.Q6_K.gguf-split-b": {"size": 5, "sha256": "2"},
        "a.Q2_K.gguf": {"size": 3, "sha256": "3"},
        "README.md": {"size": 1, "sha256": None},
    })
    assert [(f.filename, f.size_bytes, len(f.parts)) for f in files] == [
        ("a.Q2_K.gguf", 3, 0), ("a.Q6_K.gguf", 15, 2)]
    assert files[0].size_class == "70B"


def test_fit_plan_before_download_for_every_face() -> None:
    from app.engine.hardware import GIB, Hardware
    from app.engine.planner import ModelShape, Verdict, plan

    roomy = Hardware(ram_total=256 * GIB, ram_available=200 * GIB)
    q4 = catalogue.find("TheBloke/Llama-2-7B-Chat-GGUF", quant="Q4_K_M")
    assert q4 is not None and q4.size_bytes
    by_size = catalogue.plan_for(q4, 4096, roomy)
    assert by_size == plan(ModelShape.known("7B", q4.size_bytes), 4096, roomy)
    assert by_size is not None and by_size.verdict is Verdict.CPU_ONLY
    # no size (a Hub listing without one): estimated from the quantization
    unsized = replace(q4, size_bytes=None)
    estimated = catalogue.plan_for(unsized, 4096, roomy)
    assert estimated == plan(ModelShape.known("7B", None, "Q4_K_M"), 4096, roomy)
    # no verdict without a size class, or without both size and a known quantization
    assert catalogue.plan_for(replace(q4, size_class=None), 4096, roomy) is None
    assert catalogue.plan_for(replace(unsized, quantization="?"), 4096, roomy) is None
    tiny = Hardware(ram_total=2 * GIB, ram_available=1 * GIB)
    files = [q4, replace(q4, filename="x.gguf", size_class=None)]
    assert catalogue.verdicts(files, 4096, tiny) == {q4.filename: "won't fit"}
