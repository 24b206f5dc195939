"""`llama-desk chat`: stream a reply to stdout, or chat interactively; every turn is stored."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.errors import UserError

if TYPE_CHECKING:
    from app.engine.engine import ModelInfo
    from app.engine.owner import EngineOwner
    from app.engine.types import GenerationResult, Message, Sampling
    from app.store import Store

SAMPLING_FLAGS = {  # CLI flag -> Sampling field
    "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
    "repeat_penalty": "repeat_penalty", "max_tokens": "max_tokens", "seed": "seed",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "chat", help="chat with a model in the terminal",
        description="Stream a reply to MESSAGE, or with no MESSAGE chat until Ctrl+D. Ctrl+C stops "
        "the current reply, not the program. Each turn is saved to the history.",
    )
    p.add_argument("message", nargs="?", help="one message to answer (omit for an interactive chat)")
    p.add_argument("-m", "--model", help="installed model name, or a path to a .gguf file")
    p.add_argument("--system", help="system prompt (default: the conversation's or the app's)")
    p.add_argument("--continue", dest="continue_id", type=int, metavar="ID",
                   help="continue stored conversation ID")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", dest="top_p", type=float)
    p.add_argument("--top-k", dest="top_k", type=int)
    p.add_argument("--min-p", dest="min_p", type=float)
    p.add_argument("--repeat-penalty", dest="repeat_penalty", type=float)
    p.add_argument("--max-tokens", dest="max_tokens", type=int, help="max new tokens per reply")
    p.add_argument("--seed", type=int, help="fixed seed (default: fresh per reply)")
    p.add_argument("--ctx", type=int, help="context size in tokens (default 4096)")
    p.add_argument("--gpu-layers", type=int, help="-1 all, 0 CPU only (default: automatic)")
    p.add_argument("--format", choices=("auto", "llama-2", "template"), help="prompt format")
    p.add_argument("--stats", action="store_true", help="print speed and token counts to stderr")
    p.add_argument("--no-save", action="store_true", help="do not store this chat")
    p.set_defaults(func=run)


@dataclass
class ChatSession:
    """One conversation being continued in the terminal."""

    owner: EngineOwner
    model: ModelInfo
    sampling: Sampling
    system: str
    store: Store | None
    conversation_id: int | None = None
    history: list[Message] = field(default_factory=list)

    def messages(self, user_text: str) -> list[Message]:
        from app.engine.types import Message

        head = [Message("system", self.system)] if self.system.strip() else []
        return [*head, *self.history, Message("user", user_text)]

    def turn(self, text: str, *, stats: bool) -> GenerationResult:
        """Store the user message, stream the reply to stdout while storing it, return the stats.

        The prompt is prepared first, so a message too long for the context is refused before
        anything is stored. A Ctrl+C that lands outside the engine wait still ends the stored
        reply as cancelled (the writer's context manager) and keeps the history in step.
        """
        from app.engine.types import Message

        generation = self.owner.start(self.messages(text), self.sampling)
        writing: Any = contextlib.nullcontext(None)
        if self.store is not None:
            if self.conversation_id is None:
                self.conversation_id = self.store.create_conversation(
                    system_prompt=self.system, sampling=self.sampling.to_dict(),
                    model=self.model.name).id
            self.store.add_user_message(self.conversation_id, text)  # committed before generating
            reply = self.store.start_assistant(self.conversation_id, model_name=self.model.name,
                                               model_file=str(self.model.path))
            writing = self.store.reply_writer(reply.id)
        pieces: list[str] = []
        try:
            with writing as writer:
                for chunk in self.owner.stream(generation):
                    pieces.append(chunk)
                    sys.stdout.write(chunk)
                    sys.stdout.flush()
                    if writer is not None:
                        writer.append(chunk)
                result = generation.result
                if writer is not None:
                    writer.finish(result)
        finally:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.history += [Message("user", text), Message("assistant", "".join(pieces))]
        if result.dropped_messages:
            print(f"[{result.dropped_messages} earlier messages did not fit the context and were "
                  "left out]", file=sys.stderr)
        if result.finish_reason == "cancelled":
            print("[stopped]", file=sys.stderr)
        elif result.finish_reason == "length":
            print(f"[reply cut at {self.sampling.max_tokens} new tokens]", file=sys.stderr)
        if stats:
            print(format_stats(result), file=sys.stderr)
        if result.finish_reason == "error":
            raise UserError(result.error or "generation failed")
        return result


def format_stats(result: GenerationResult) -> str:
    return (
        f"[{result.generated_tokens} tokens, {result.tokens_per_s:.1f} tok/s, "
        f"TTFT {result.ttft_s * 1000:.0f} ms, prompt {result.prompt_tokens} tokens "
        f"({result.reused_tokens} reused), {result.finish_reason}]"
    )


def _sampling(args: argparse.Namespace, base: dict[str, Any]) -> Sampling:
    from app.engine.types import Sampling

    changes = {f: getattr(args, flag) for flag, f in SAMPLING_FLAGS.items()
               if getattr(args, flag) is not None}
    known = {k: v for k, v in base.items() if k in Sampling.__dataclass_fields__}
    return Sampling.from_dict({**known, **changes})


def _model_path(args: argparse.Namespace, settings_model: str | None, stored: str | None) -> str:
    from pathlib import Path

    from app.hub import installed

    wanted = args.model or stored or settings_model
    if wanted:
        try:
            return str(installed.resolve_model(wanted).path)
        except UserError:
            if args.model and (Path(wanted).suffix == ".gguf" or "/" in wanted):
                return wanted  # the engine names the missing or bad file precisely
            if args.model:
                raise
    default = installed.default_model()
    if default is None:
        raise UserError("No model is installed; run `llama-desk download TheBloke/Llama-2-7B-Chat-GGUF`"
                        " or reinstall to get the starter model.")
    return str(default.path)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from app import settings as app_settings
    from app.engine.owner import EngineOwner
    from app.engine.types import Message

    settings = app_settings.load()
    store = None
    conv = None
    history: list[Message] = []
    if not args.no_save or args.continue_id is not None:
        from app.store import Store

        store = Store.open()
    if args.continue_id is not None:
        assert store is not None
        conv = store.get_conversation(args.continue_id)
        if conv.trashed_at is not None:
            raise UserError(f"Conversation {conv.id} is in the trash; restore it first "
                            f"(`llama-desk history restore {conv.id}`).")
        for msg in store.current_branch(conv.id):
            if msg.role in ("user", "assistant") and msg.content:
                history.append(Message(msg.role, msg.content))  # type: ignore[arg-type]
    sampling = _sampling(args, conv.sampling if conv and conv.sampling else settings.sampling)
    system = args.system if args.system is not None else (
        conv.system_prompt if conv else settings.default_system_prompt)
    path = _model_path(args, settings.model, conv.model if conv else None)
    options = settings.load_options(path)
    options = replace(
        options,
        n_ctx=args.ctx or options.n_ctx,
        n_gpu_layers=args.gpu_layers if args.gpu_layers is not None else options.n_gpu_layers,
        prompt_format=args.format or options.prompt_format,
    )
    owner = EngineOwner()
    try:
        info = owner.call(owner.engine.load, path, options)
        session = ChatSession(owner, info, sampling, system, None if args.no_save else store,
                              conv.id if conv else None, history)
        if args.message is not None:
            session.turn(args.message, stats=args.stats)
            return 0
        return _interactive(session, stats=args.stats)
    finally:
        owner.close()
        if store is not None:
            store.close()


def _interactive(session: ChatSession, *, stats: bool) -> int:
    print(f"Chatting with {session.model.name} ({session.model.format_name} format, "
          f"{session.model.n_ctx:,}-token context). Ctrl+C stops a reply; Ctrl+D quits.",
          file=sys.stderr)
    while True:
        try:
            text = input("you> " if sys.stdin.isatty() else "")
        except EOFError:
            print(file=sys.stderr)
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        if not text.strip():
            continue
        try:
            session.turn(text, stats=stats)
        except UserError as err:  # e.g. a message too long for the context: say so, keep going
            print(f"llama-desk: error: {err}", file=sys.stderr)
        except KeyboardInterrupt:  # Ctrl+C outside the engine wait: the reply stops, we go on
            print("[stopped]", file=sys.stderr)
