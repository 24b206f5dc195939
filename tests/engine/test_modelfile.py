"""Bad model files are refused before llama.cpp sees them, with a message naming file and problem."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from app.engine.engine import LlamaEngine
from app.engine.modelfile import check_model_file
from app.errors import ModelFileError


def test_starter_model_header(starter_model: Path) -> None:
    info = check_model_file(starter_model)
    assert info.architecture == "llama"
    assert info.n_layers == 30 and info.n_ctx_train >= 2048
    assert info.file_type == "Q4_1"
    assert info.chat_template and "<|im_start|>" in info.chat_template


@pytest.mark.parametrize(
    ("name", "make", "expected"),
    [
        ("missing.gguf", None, "not found"),
        ("empty.gguf", lambda p, s: p.write_bytes(b""), "empty"),
        ("random.gguf", lambda p, s: p.write_bytes(os.urandom(4096)), "Not a GGUF"),
        ("notes.gguf", lambda p, s: p.write_text("# my notes\nnot a model\n"), "looks like text"),
        ("truncated.gguf", lambda p, s: p.write_bytes(s.read_bytes()[: s.stat().st_size // 2]),
         "truncated"),
        ("header-only.gguf", lambda p, s: p.write_bytes(s.read_bytes()[:4000]), "truncated"),
    ],
)
def test_bad_files_give_clear_errors(
    tmp_path: Path, starter_model: Path, name: str, make, expected: str  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / name
    if make:
        make(path, starter_model)
    with pytest.raises(ModelFileError, match=expected) as err:
        check_model_file(path)
    assert str(path) in str(err.value)
    # The engine refuses the same way, and stays usable (nothing loaded).
    engine = LlamaEngine()
    with pytest.raises(ModelFileError, match=expected):
        engine.load(path)
    assert not engine.loaded


def test_directory_and_unsupported_architecture(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="Not a file"):
        check_model_file(tmp_path)
    path = tmp_path / "bert.gguf"
    writer = GGUFWriter(str(path), "bert")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelFileError, match="Unsupported model architecture 'bert'"):
        check_model_file(path)


def test_vocab_only_file_is_not_a_model(llama_vocab: Path) -> None:
    with pytest.raises(ModelFileError, match="only a vocabulary"):
        check_model_file(llama_vocab)
    assert check_model_file(llama_vocab, allow_vocab_only=True).vocab_only


def test_lean_header_parser_agrees_with_gguf_reader(
    starter_model: Path, tiny_llama2: Path, llama_vocab: Path
) -> None:
    """Our mmap header parser (12 ms, no numpy objects) reports what gguf.GGUFReader reads."""
    from gguf import GGUFReader

    for path in (starter_model, tiny_llama2, llama_vocab):
        ours = check_model_file(path, allow_vocab_only=True)
        reader = GGUFReader(path)

        def field(key: str, reader: GGUFReader = reader) -> object:
            f = reader.fields.get(key)
            return None if f is None else f.contents()

        arch = field("general.architecture")
        assert ours.architecture == arch
        assert ours.name == (field("general.name") or path.stem)
        assert ours.n_layers == (field(f"{arch}.block_count") or 0)
        assert ours.n_ctx_train == (field(f"{arch}.context_length") or 0)
        assert ours.n_embd == (field(f"{arch}.embedding_length") or 0)
        assert ours.n_head == (field(f"{arch}.attention.head_count") or 0)
        assert ours.n_vocab == len(reader.fields["tokenizer.ggml.tokens"].data)
        assert ours.chat_template == field("tokenizer.chat_template")
        assert ours.bos_token_id == field("tokenizer.ggml.bos_token_id")
        assert ours.eos_token_id == field("tokenizer.ggml.eos_token_id")
        assert ours.tensor_bytes == sum(int(t.n_bytes) for t in reader.tensors)
        assert ours.vocab_only == (not reader.tensors)
