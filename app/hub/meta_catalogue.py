"""The models Meta's download.sh offers (7B, 13B, 70B, base and chat): files, sizes, fit verdicts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.errors import UserError
from app.hub.catalogue import CatalogueFile, OfficialModel
from app.hub.meta_link import REQUEST_PAGE

if TYPE_CHECKING:
    from app.engine.hardware import Hardware

# download.sh fetches these once, next to the model folders (the tokenizer is the same for all).
COMMON_FILES = ("LICENSE", "USE_POLICY.md", "tokenizer_checklist.chk", "tokenizer.model")
LICENCE_FILES = ("LICENSE", "USE_POLICY.md")
# consolidated.NN.pth sizes of Meta's Llama 2 release (bfloat16; base and chat alike), for the
# disk check and the progress total before the CDN has told the real sizes.
_SHARDS = {"7B": (1, 13_476_925_163), "13B": (2, 13_016_334_699), "70B": (8, 17_246_706_935)}


@dataclass(frozen=True)
class MetaModel(OfficialModel):
    """One model folder of Meta's release, e.g. ``llama-2-7b-chat`` (download.sh's 7B-chat)."""

    model_id: str = ""
    shards: int = 1

    @property
    def page(self) -> str:
        return REQUEST_PAGE

    @property
    def chat(self) -> bool:
        return self.model_id.endswith("-chat")

    @property
    def script_name(self) -> str:
        """download.sh's name for it: 7B, 13B-chat, ..."""
        return self.size_class + ("-chat" if self.chat else "")

    def model_files(self) -> tuple[str, ...]:
        """The folder's files in the order they are fetched (small ones first), as download.sh
        names them: ``llama-2-7b-chat/consolidated.00.pth`` (``seq -f "0%g"``)."""
        small = ("checklist.chk", "params.json")
        shards = tuple(f"consolidated.{n:02d}.pth" for n in range(self.shards))
        return tuple(f"{self.model_id}/{name}" for name in (*small, *shards))

    def choice(self, quant: str) -> CatalogueFile:
        """A catalogue-like row for the fit verdict of the ``quant`` result."""
        return CatalogueFile(self.model_id, f"meta:{self.model_id}:{quant}", quant,
                             self.result_bytes(quant), size_class=self.size_class)


def _model(size: str, chat: bool) -> MetaModel:
    shards, each = _SHARDS[size]
    model_id = f"llama-2-{size.lower()}" + ("-chat" if chat else "")
    title = f"Llama 2 {size}" + (" Chat" if chat else "")
    return MetaModel(f"meta:{model_id}", title, size, shards * each, model_id=model_id,
                     shards=shards)


META_MODELS = tuple(_model(size, chat) for size in _SHARDS for chat in (True, False))
_NAME = re.compile(r"^(?:llama-?2-)?(7|13|70)b(-chat)?$", re.IGNORECASE)


def meta_models() -> list[MetaModel]:
    return list(META_MODELS)


def find_meta_model(name: str) -> MetaModel:
    """``llama-2-7b-chat`` or download.sh's ``7B-chat`` (any case); UserError lists the choices."""
    match = _NAME.match(name.strip())
    if match:
        wanted = f"llama-2-{match.group(1)}b" + ("-chat" if match.group(2) else "")
        for model in META_MODELS:
            if model.model_id == wanted:
                return model
    names = ", ".join(m.model_id for m in META_MODELS)
    raise UserError(f"Unknown Meta model {name.strip()!r}; choose one of: {names}.")


def meta_verdicts(quant: str, n_ctx: int, hardware: Hardware) -> dict[str, str]:
    """Fit verdict of each model's ``quant`` result on this machine, by model id."""
    from app.hub import catalogue

    out = {}
    for model in META_MODELS:
        plan = catalogue.plan_for(model.choice(quant), n_ctx, hardware)
        if plan is not None:
            out[model.model_id] = plan.short
    return out
