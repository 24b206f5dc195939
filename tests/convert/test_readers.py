"""The .pth (zip + restricted pickle) and .safetensors readers, and exact dtype conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.convert import pth, safetensors_file
from app.convert.errors import ConvertError
from app.convert.tensors import read, to_float16, to_float32, unpermute_rotary
from tests.convert import checkpoints as ck
from tests.convert.torchzip import RawTensor, state_dict_pickle, write_pth

RNG = np.random.default_rng(7)


def one_line(err: pytest.ExceptionInfo[ConvertError]) -> str:
    text = str(err.value)
    assert "\n" not in text and len(text) < 400
    return text


def test_pth_round_trip_of_bf16_f16_f32_offsets_and_strides(tmp_path: Path) -> None:
    a = RNG.standard_normal((6, 4)).astype(np.float32)
    storage = RNG.standard_normal(40).astype(np.float16)
    tensors = {
        "bf16": RawTensor.of("BF16", ck.bf16_bits(a)),
        "f16": RawTensor.of("F16", a.astype(np.float16)),
        "f32": RawTensor.of("F32", a),
        "offset": RawTensor("F16", storage, (3, 5), (5, 1), offset=7),
        "transposed": RawTensor("F16", storage, (5, 8), (1, 5), offset=0),  # a .t() view
    }
    path = write_pth(tmp_path / "consolidated.00.pth", tensors)
    refs = pth.read_index(path)
    assert list(refs) == list(tensors)
    assert np.array_equal(to_float32(read(refs["bf16"]), "BF16"), ck.from_bf16(ck.bf16_bits(a)))
    assert np.array_equal(read(refs["f16"]), a.astype(np.float16))
    assert np.array_equal(read(refs["f32"]), a)
    assert np.array_equal(read(refs["offset"]), storage[7:22].reshape(3, 5))
    assert np.array_equal(read(refs["transposed"]), storage.reshape(8, 5).T)


@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "eval"),
                                         ("torch._utils", "_rebuild_parameter"),
                                         ("torch", "Tensor"), ("subprocess", "call")])
def test_a_pickle_asking_for_any_other_global_is_refused(module: str, name: str,
                                                         tmp_path: Path) -> None:
    marker = Path("/tmp/llama-desk-pwned")
    marker.unlink(missing_ok=True)
    path = write_pth(tmp_path / "evil.pth", {"w": RawTensor.of("F32", np.ones(2, np.float32))},
                     extra_global=(module, name))
    with pytest.raises(ConvertError) as err:
        pth.read_index(path)
    assert f"asks for {module}.{name}" in one_line(err)
    assert not marker.exists()


def test_legacy_truncated_and_non_zip_pth_files_are_one_line_each(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.")
    with pytest.raises(ConvertError) as err:
        pth.read_index(legacy)
    assert "pre-1.6" in one_line(err)
    good = write_pth(tmp_path / "consolidated.00.pth",
                     {"w": RawTensor.of("F32", np.ones((64, 64), np.float32))})
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ConvertError) as err:
        pth.read_index(cut)
    assert "truncated" in one_line(err)
    not_dict = tmp_path / "list.pth"
    import zipfile

    with zipfile.ZipFile(not_dict, "w") as zf:
        zf.writestr("list/data.pkl", b"\x80\x02]q\x00.")  # an empty list
    with pytest.raises(ConvertError) as err:
        pth.read_index(not_dict)
    assert "not a state dict" in one_line(err)


def test_pickle_writer_matches_the_structure_torch_uses() -> None:
    """The hand-written pickle loads with pickletools as REDUCE of _rebuild_tensor_v2."""
    import pickletools

    data = state_dict_pickle({"w": RawTensor.of("BF16", np.zeros(3, np.uint16))})
    ops = [op.name for op, _arg, _pos in pickletools.genops(data)]
    assert ops[:2] == ["PROTO", "GLOBAL"] and "BINPERSID" in ops and ops[-1] == "STOP"


def test_safetensors_reader_agrees_with_the_safetensors_package(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    tensors = {"a": RNG.standard_normal((5, 7)).astype(np.float32),
               "b": RNG.standard_normal(9).astype(np.float32)}
    for dtype, np_type in (("F16", np.float16), ("F32", np.float32)):
        path = ck.write_safetensors(tmp_path / f"{dtype}.safetensors", tensors, dtype)
        theirs = load_file(str(path))
        ours = safetensors_file.read_index(path)
        assert set(ours) == set(theirs)
        for name in tensors:
            assert read(ours[name]).dtype == np_type
            assert np.array_equal(read(ours[name]), theirs[name])


def test_bf16_safetensors_upcast_exactly(tmp_path: Path) -> None:
    a = RNG.standard_normal((4, 4)).astype(np.float32)
    path = ck.write_safetensors(tmp_path / "bf.safetensors", {"a": a}, "BF16")
    ref = safetensors_file.read_index(path)["a"]
    exact = ck.from_bf16(ck.bf16_bits(a))
    assert np.array_equal(to_float32(read(ref), "BF16"), exact)
    assert np.array_equal(to_float16(read(ref), "BF16", "a"), exact.astype(np.float16))
    assert np.array_equal(to_float16(read(ref), "BF16", "a").astype(np.float32), exact)  # no loss


def test_truncated_safetensors_is_one_line(tmp_path: Path) -> None:
    path = ck.write_safetensors(tmp_path / "m.safetensors", {"a": np.ones((64, 64), np.float32)})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ConvertError) as err:
        safetensors_file.read_index(path)
    assert "truncated" in one_line(err)
    path.write_bytes(b"\x10\x00")
    with pytest.raises(ConvertError) as err:
        safetensors_file.read_index(path)
    assert "truncated or not a .safetensors file" in one_line(err)


def test_values_beyond_float16_are_refused_not_written_as_inf() -> None:
    big = np.array([1.0, 70000.0], np.float32)
    with pytest.raises(ConvertError, match="float16 cannot represent"):
        to_float16(big, "F32", "blk.0.attn_q.weight")


def test_unpermute_inverts_transformers_permute() -> None:
    w = RNG.standard_normal((32, 8)).astype(np.float32)
    for heads in (1, 2, 4):
        assert np.array_equal(unpermute_rotary(ck.hf_permute(w, heads), heads), w)
    assert not np.array_equal(unpermute_rotary(ck.hf_permute(w, 2), 4), w)


def test_bf16_to_f16_matches_numpy_for_every_bf16_value_float16_can_hold() -> None:
    """Exhaustive: all 65,536 bfloat16 bit patterns (the fast path moves exponent bits)."""
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    exponent = (every >> 7) & 0xFF
    fits = every[exponent <= 127 + 15]
    want = ck.from_bf16(fits).astype(np.float16)
    got = to_float16(fits, "BF16", "all")
    assert np.array_equal(got.view(np.uint16), want.view(np.uint16))
    for bits in every[exponent > 127 + 15][::97]:  # beyond float16, inf and nan: refused
        with pytest.raises(ConvertError):
            to_float16(np.array([bits], np.uint16), "BF16", "big")
