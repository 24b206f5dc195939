"""Fetch the Llama SPM vocabulary from llama-cpp-python's PyPI source distribution for tests."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packaging"))
import build_llama_tools  # noqa: E402  (the sdist cached by the llama-cpp-python build)


def main(dest: str) -> int:
    target = Path(dest)
    wanted = build_llama_tools.VERSION
    sdist = build_llama_tools.sdist()
    with tarfile.open(sdist) as tar:
        members = {m.name: m for m in tar.getmembers()}
        # The .inp/.out pair is llama.cpp's tokenizer reference (made with sentencepiece).
        for suffix in (".inp", ".out", ""):
            member = next(m for n, m in members.items() if n.endswith(MEMBER + suffix))
            data = tar.extractfile(member)
            assert data is not None
            out = target.with_name(target.name + suffix)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp_out = out.with_name(out.name + ".part")
            tmp_out.write_bytes(data.read())
            tmp_out.replace(out)
    print(f"wrote {target} ({target.stat().st_size} bytes) from llama-cpp-python {wanted} sdist")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
