"""Prompt formats: Meta's exact Llama-2-chat algorithm, and GGUF-embedded Jinja chat templates."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.engine.types import Message, PreparedPrompt
from app.errors import SettingsError

log = logging.getLogger(__name__)

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
FORMAT_NAMES = ("auto", "llama-2", "template")


class Tokenizer(Protocol):
    """What a format needs from the model's vocabulary (a ``llama_cpp.Llama`` wrapper)."""

    bos_id: int
    eos_id: int
    bos_text: str
    eos_text: str
    add_bos: bool

    def encode(self, text: str, *, special: bool) -> list[int]:
        """Tokens of ``text`` without BOS/EOS; ``special`` parses special-token text."""
        ...


class PromptFormat(Protocol):
    @property
    def name(self) -> str: ...

    def render(self, messages: Sequence[Message], tok: Tokenizer) -> PreparedPrompt: ...

    def exchange_tokens(self, exchange: Sequence[Message], tok: Tokenizer) -> tuple[int, bool]:
        """(tokens, exact) of one exchange (a user message and its replies) inside a prompt:
        exact when the format tokenizes exchanges independently, else its text's tokens only
        (the budget adds the markup it measured)."""
        ...


def text_tokens(exchange: Sequence[Message], tok: Tokenizer) -> int:
    """Tokens of the messages' text alone (an estimate's base)."""
    return sum(len(tok.encode(m.content, special=False)) for m in exchange)


def normalize(messages: Sequence[Message]) -> list[Message]:
    """Merge consecutive messages of the same role (blank line between), drop empty replies.

    Llama-2-chat requires strictly alternating user/assistant turns; a history can break that
    (a reply that failed before writing anything), and merging keeps every word the user wrote.
    """
    out: list[Message] = []
    for msg in messages:
        if msg.role == "assistant" and not msg.content.strip():
            continue
        if out and out[-1].role == msg.role and msg.role != "system":
            out[-1] = Message(msg.role, f"{out[-1].content}\n\n{msg.content}")
        else:
            out.append(msg)
    return out


@dataclass(frozen=True)
class Llama2Format:
    """Meta's reference ``chat_completion`` (facebookresearch/llama, generation.py), token for token.

    A leading system message is merged into the first user message inside ``<<SYS>>`` tags; every
    finished exchange is ``BOS [INST] user [/INST] answer EOS``; the last user turn has no EOS.
    BOS/EOS are the special ids; message text is tokenized as plain text, so a user typing
    ``[INST]`` or ``<s>`` gets exactly the tokens the reference would give.
    """

    name: str = "llama-2"

    def render(self, messages: Sequence[Message], tok: Tokenizer) -> PreparedPrompt:
        dialog = normalize(messages)
        if dialog and dialog[0].role == "system":
            if len(dialog) < 2:
                raise SettingsError("A conversation needs a user message after the system prompt.")
            dialog = [
                Message(dialog[1].role, B_SYS + dialog[0].content + E_SYS + dialog[1].content),
                *dialog[2:],
            ]
        roles = [m.role for m in dialog]
        if not dialog or roles[-1] != "user":
            raise SettingsError("The last message sent to the model must be from the user.")
        if any(r != ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(roles)):
            raise SettingsError("Llama-2-chat needs alternating user and assistant messages.")
        tokens: list[int] = []
        parts: list[str] = []
        for prompt, answer in zip(dialog[::2], dialog[1::2], strict=False):
            text = f"{B_INST} {prompt.content.strip()} {E_INST} {answer.content.strip()} "
            tokens += [tok.bos_id, *tok.encode(text, special=False), tok.eos_id]
            parts.append(f"{tok.bos_text}{text}{tok.eos_text}")
        text = f"{B_INST} {dialog[-1].content.strip()} {E_INST}"
        tokens += [tok.bos_id, *tok.encode(text, special=False)]
        parts.append(f"{tok.bos_text}{text}")
        return PreparedPrompt(tokens=tokens, text="".join(parts), format_name=self.name)

    def exchange_tokens(self, exchange: Sequence[Message], tok: Tokenizer) -> tuple[int, bool]:
        """The reference tokenizes each ``BOS [INST] u [/INST] a EOS`` on its own, so a whole
        exchange's count is exact (only where the system prompt merges into the first kept one
        can it differ by a token or so, which ``fit_prompt``'s final check catches)."""
        dialog = normalize(exchange)
        if [m.role for m in dialog] != ["user", "assistant"]:
            return text_tokens(exchange, tok), False  # merges with its neighbours when kept
        text = f"{B_INST} {dialog[0].content.strip()} {E_INST} {dialog[1].content.strip()} "
        return len(tok.encode(text, special=False)) + 2, True


class TemplateFormat:
    """A Hugging Face style Jinja chat template from the GGUF, rendered in a sandbox.

    Mirrors llama-cpp-python's ``Jinja2ChatFormatter``: ``ImmutableSandboxedEnvironment`` with
    ``trim_blocks``/``lstrip_blocks``, ``bos_token``/``eos_token`` and ``add_generation_prompt``.
    """

    name = "template"

    def __init__(self, template: str) -> None:
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(
            loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
            extensions=[jinja2.ext.loopcontrols],
        )
        try:
            self._template = env.from_string(template)
        except jinja2.TemplateError as err:
            raise SettingsError(f"The model's chat template is invalid: {err}") from err

    def render(self, messages: Sequence[Message], tok: Tokenizer) -> PreparedPrompt:
        import jinja2

        def raise_exception(message: str) -> None:
            raise SettingsError(f"The model's chat template refused the conversation: {message}")

        dialog = normalize(messages)
        try:
            text = self._template.render(
                messages=[{"role": m.role, "content": m.content} for m in dialog],
                bos_token=tok.bos_text, eos_token=tok.eos_text,
                add_generation_prompt=True, raise_exception=raise_exception,
            )
        except jinja2.TemplateError as err:
            raise SettingsError(f"The model's chat template failed: {err}") from err
        tokens = tok.encode(text, special=True)
        if tok.add_bos and (not tokens or tokens[0] != tok.bos_id):
            tokens.insert(0, tok.bos_id)
            text = tok.bos_text + text
        return PreparedPrompt(tokens=tokens, text=text, format_name=self.name)

    def exchange_tokens(self, exchange: Sequence[Message], tok: Tokenizer) -> tuple[int, bool]:
        """A template may render a message depending on its neighbours: text tokens only."""
        return text_tokens(exchange, tok), False


def is_llama2_template(template: str | None) -> bool:
    """True for the Llama-2-chat template some GGUF conversions embed (rendered exactly instead)."""
    return bool(template) and "[INST]" in str(template) and "<<SYS>>" in str(template)


def choose_format(override: str, chat_template: str | None) -> PromptFormat:
    """Pick the prompt format for a model.

    ``auto``: no embedded template (TheBloke's 2023 Llama-2-chat GGUFs) or an embedded Llama-2
    template -> the exact reference algorithm; any other template -> that template.
    """
    if override not in FORMAT_NAMES:
        raise SettingsError(
            f"Unknown prompt format {override!r}; use one of: {', '.join(FORMAT_NAMES)}."
        )
    if override == "llama-2":
        return Llama2Format()
    if override == "template":
        if not chat_template:
            raise SettingsError("This model carries no chat template; use the llama-2 format.")
        return TemplateFormat(chat_template)
    if not chat_template or is_llama2_template(chat_template):
        return Llama2Format()
    return TemplateFormat(chat_template)
