"""Fetch the Llama SPM vocabulary from llama-cpp-python's PyPI source distribution for tests."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

MEMBER = "vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"


def main(dest: str) -> int:
    target = Path(dest)
    wanted = version("llama-cpp-python")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "-q", "-d", tmp, f"llama-cpp-python=={wanted}"],
            check=True,
        )
        sdist = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
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
