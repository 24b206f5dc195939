"""`llama-desk chat`: stream a reply to stdout, or chat interactively, through the chat service."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.errors import Cancelled, UserError

if TYPE_CHECKING:
    from app.chat.reply import Reply
    from app.chat.service import ChatService
    from app.engine.owner import EngineOwner
    from app.engine.protocol import Engine
    from app.engine.types import GenerationResult, Message

# Sampling flags: one per Sampling field (names and ranges from app.engine.types).
FLAG_HELP = {
    "max_tokens": "max new tokens per reply",
    "seed": "fixed seed (default: a fresh one per reply)",
    "top_k": "top-k (0 turns it off)",
}
INTERACTIVE_HELP = (
    "Commands: /regen answers your last message again (the old answer stays as an alternate), "
    "/edit TEXT replaces your last message with TEXT and answers it, /help, /quit."
)


def register(sub: Any) -> None:
    from app.engine.types import SAMPLING_RANGES

    p = sub.add_parser(
        "chat", help="chat with a model in the terminal",
        description="Stream a reply to MESSAGE, or with no MESSAGE chat until Ctrl+D. Ctrl+C stops "
        "the current reply, not the program. Each turn is saved to the history. Sampling flags "
        "apply to this run only; the conversation's own settings and the app's fill in the rest.",
        epilog=INTERACTIVE_HELP,
    )
    p.add_argument("message", nargs="?", help="one message to answer (omit for an interactive chat)")
    p.add_argument("-m", "--model", help="installed model name, or a path to a .gguf file (with "
                   "--engine: one of the server's models, default its first)")
    p.add_argument("--engine", metavar="NAME|URL",
                   help="chat with a model on a remote engine (`llama-desk engines add`) or a "
                   "server URL (llama.cpp's llama-server or any OpenAI-compatible server)")
    p.add_argument("--system", help="system prompt (default: the conversation's or the app's)")
    p.add_argument("--continue", dest="continue_id", type=int, metavar="ID",
                   help="continue stored conversation ID")
    p.add_argument("--regenerate", nargs="?", type=int, const=0, metavar="MESSAGE_ID",
                   help="with --continue: answer the last user message again (or MESSAGE_ID's)")
    p.add_argument("--edit", type=int, metavar="MESSAGE_ID",
                   help="with --continue and MESSAGE: replace user message MESSAGE_ID by MESSAGE "
                   "(a new branch) and answer it")
    for name, allowed in SAMPLING_RANGES.items():
        low, high = ((int(allowed.low), int(allowed.high)) if allowed.whole
                     else (allowed.low, allowed.high))
        p.add_argument("--" + name.replace("_", "-"), dest=name,
                       type=int if allowed.whole else float, metavar="N" if allowed.whole else "X",
                       help=f"{FLAG_HELP.get(name, name.replace('_', ' '))} ({low} to {high})")
    add_load_flags(p)
    add_engine_flags(p)
    p.add_argument("--rpc", metavar="HOST:PORT[,HOST:PORT...]",
                   help="llama.cpp RPC workers (`llama-desk worker`) to spread the model over "
                   "(default: the Workers setting)")
    p.add_argument("--stats", action="store_true", help="print speed and token counts to stderr")
    p.add_argument("--no-save", action="store_true", help="do not store this chat")
    p.set_defaults(func=run)


def add_load_flags(p: Any) -> None:
    """--ctx, --gpu-layers and --format (shared by chat, serve and bench; see load_overrides)."""
    p.add_argument("--ctx", type=int, help="context size in tokens (default: the app setting)")
    p.add_argument("--gpu-layers", type=int, help="-1 all, 0 CPU only (default: automatic)")
    p.add_argument("--format", choices=("auto", "llama-2", "template"), help="prompt format")


def add_engine_flags(p: Any) -> None:
    """--threads, --batch-threads and --kv-type (shared by chat and bench)."""
    from app.engine.types import KV_TYPES

    p.add_argument("--threads", type=int, metavar="N",
                   help="decode threads (default: one per physical performance core)")
    p.add_argument("--batch-threads", type=int, metavar="N",
                   help="threads reading the prompt (default: every usable CPU)")
    p.add_argument("--kv-type", choices=tuple(KV_TYPES),
                   help="KV cache type (default f16; q8_0 halves its memory)")


def format_stats(result: GenerationResult) -> str:
    reused = f"{result.reused_tokens} reused"
    if result.restored_tokens:
        reused += f", {result.restored_tokens} from the kept state"
    return (
        f"[{result.generated_tokens} tokens, {result.tokens_per_s:.1f} tok/s, "
        f"TTFT {result.ttft_s * 1000:.0f} ms, prompt {result.prompt_tokens} tokens "
        f"({reused}), {result.finish_reason}]"
    )


def sampling_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The sampling flags given on the command line (the request layer of the rule)."""
    from app.engine.types import SAMPLING_RANGES

    return {name: getattr(args, name) for name in SAMPLING_RANGES
            if getattr(args, name, None) is not None}


def load_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Load options given on the command line (over the app settings)."""
    from app.engine.rpc import parse_endpoints

    rpc = getattr(args, "rpc", None)
    given = {"n_ctx": args.ctx, "n_gpu_layers": args.gpu_layers,
             "prompt_format": getattr(args, "format", None),
             "n_threads": getattr(args, "threads", None),
             "n_threads_batch": getattr(args, "batch_threads", None),
             "kv_type": getattr(args, "kv_type", None),
             "rpc_servers": parse_endpoints(rpc) if rpc else None}
    return {k: v for k, v in given.items() if v is not None}


class TerminalChat:
    """One conversation in the terminal: every turn goes through the chat service."""

    def __init__(self, owner: EngineOwner[ChatService], args: argparse.Namespace) -> None:
        from app.chat.text import InputCleaner
        from app.commands.reading import PromptProgress

        self.progress = PromptProgress()
        self.owner = owner
        self.service = owner.resource
        self.overrides = sampling_overrides(args)
        self.clean = InputCleaner()
        self.system = None if args.system is None else self.clean(args.system)
        self.save = not args.no_save
        self.stats = args.stats
        self.conversation_id: int | None = args.continue_id
        self.history: list[Message] = []  # an unsaved chat's turns (a saved one is in the store)

    def start_unsaved(self) -> None:
        """An unsaved chat continuing a stored conversation starts from its messages."""
        if self.save or self.conversation_id is None:
            return
        self.history = self.owner.call(self._stored_messages, self.conversation_id)

    def _stored_messages(self, conversation_id: int) -> list[Message]:
        from app.chat.service import engine_messages

        conv = self.service.conversation(conversation_id)
        if self.system is None:
            self.system = conv.system_prompt
        branch = self.service.store.current_branch(conversation_id)
        return [m for m in engine_messages("", branch) if m.role != "system"]

    # -- turns ---------------------------------------------------------------------------------
    def send(self, text: str) -> GenerationResult | None:
        text = self.clean(text)
        if self.save:
            return self._run(lambda t: self.service.send(
                self.conversation_id, text, overrides=self.overrides, system=self.system, ticket=t,
                on_progress=self.progress))
        from app.engine.types import Message

        system = self.system if self.system is not None else \
            self.service.settings().default_system_prompt
        head = [Message("system", system)] if system.strip() else []
        messages = [*head, *self.history, Message("user", text)]
        result = self._run(lambda t: self.service.complete(messages, overrides=self.overrides,
                                                           ticket=t, on_progress=self.progress))
        if result is not None:
            self.history += [Message("user", text), Message("assistant", result.text)]
        return result

    def regenerate(self, message_id: int = 0) -> GenerationResult | None:
        self._need_saved("/regen")
        target = message_id or self._last("user")
        return self._run(lambda t: self.service.regenerate(target, overrides=self.overrides,
                                                           ticket=t, on_progress=self.progress))

    def edit(self, message_id: int, text: str) -> GenerationResult | None:
        self._need_saved("/edit")
        text = self.clean(text)
        target = message_id or self._last("user")
        return self._run(lambda t: self.service.edit(target, text, overrides=self.overrides,
                                                     ticket=t, on_progress=self.progress))

    def _need_saved(self, what: str) -> None:
        if not self.save or self.conversation_id is None:
            raise UserError(f"{what} needs a saved conversation: send a message first, or use "
                            "--continue ID (and no --no-save).")

    def _last(self, role: str) -> int:
        assert self.conversation_id is not None
        branch = self.owner.call(self.service.store.current_branch, self.conversation_id)
        for msg in reversed(branch):
            if msg.role == role:
                return msg.id
        raise UserError(f"Conversation {self.conversation_id} has no {role} message yet.")

    def _run(self, start: Callable[[Any], Reply]) -> GenerationResult | None:
        """Start a reply on the owner thread, stream it to stdout, report how it ended.

        Ctrl+C while it prepares or streams stops the reply (stored as cancelled), not the
        program; a reply stopped before it began stores nothing.
        """
        from app.engine.owner import Ticket

        ticket = Ticket()
        try:
            reply = self.owner.call(start, ticket, on_interrupt=ticket.cancel)
        except Cancelled:
            print("[stopped]", file=sys.stderr)
            return None
        try:
            for chunk in self.owner.stream(reply, on_interrupt=ticket.cancel):
                sys.stdout.write(chunk)
                sys.stdout.flush()
        finally:
            sys.stdout.write("\n")
            sys.stdout.flush()
        if reply.conversation_id is not None:
            self.conversation_id = reply.conversation_id
        self._report(reply)
        return reply.result

    def _report(self, reply: Reply) -> None:
        result = reply.result
        if result.dropped_messages:
            print(f"[{result.dropped_messages} earlier messages did not fit the context and were "
                  "left out]", file=sys.stderr)
        if result.finish_reason == "cancelled":
            print("[stopped]", file=sys.stderr)
        elif result.finish_reason == "length":
            print(f"[reply cut at {reply.sampling.max_tokens} new tokens]", file=sys.stderr)
        if self.stats:
            print(format_stats(result), file=sys.stderr)
        if result.finish_reason == "error":
            raise UserError(result.error or "generation failed")


def run(args: argparse.Namespace) -> int:
    return run_chat(args)


def run_chat(args: argparse.Namespace, engine_factory: Callable[[], Engine] | None = None) -> int:
    """The chat command on ``engine_factory``'s engine (the local llama.cpp engine by default)."""
    from app import settings as app_settings
    from app.chat.models import ModelChoice, remote_choice
    from app.chat.service import ChatService
    from app.chat.text import utf8_terminal
    from app.engine.local import LocalEngine
    from app.engine.owner import EngineOwner

    utf8_terminal()
    if args.regenerate is not None and args.continue_id is None:
        raise UserError("--regenerate needs --continue ID.")
    if args.edit is not None and (args.continue_id is None or args.message is None):
        raise UserError("--edit needs --continue ID and the new MESSAGE.")
    settings = app_settings.load()
    requested: str | ModelChoice | None = args.model
    if getattr(args, "engine", None):
        requested = remote_choice(args.engine, args.model or "")
        from app.engine.remote.address import privacy_warning
        from app.engine.remote.registry import parse_ref

        warning = privacy_warning(parse_ref(requested.path).config().url)
        if warning:
            print(f"llama-desk: warning: {warning}", file=sys.stderr)
    make_engine = engine_factory or LocalEngine
    owner: EngineOwner[ChatService] = EngineOwner(lambda: ChatService(
        make_engine(), settings=lambda: settings,
        history=not args.no_save or args.continue_id is not None))
    try:
        info = owner.call(owner.resource.load_model, requested,
                          conversation_id=args.continue_id, overrides=load_overrides(args))
        if owner.resource.load_note:
            print(f"llama-desk: warning: {owner.resource.load_note}", file=sys.stderr)
        session = TerminalChat(owner, args)
        session.start_unsaved()
        if args.regenerate is not None:
            session.regenerate(args.regenerate)
        elif args.edit is not None:
            session.edit(args.edit, args.message)
        elif args.message is not None:
            session.send(args.message)
        else:
            return _interactive(session, info.name, info.format_name, info.n_ctx)
        return 0
    finally:
        owner.close()


def _interactive(session: TerminalChat, name: str, format_name: str, n_ctx: int) -> int:
    context = f"{n_ctx:,}-token context" if n_ctx > 0 else "the server's context"
    print(f"Chatting with {name} ({format_name} format, {context}). Ctrl+C stops "
          "a reply; Ctrl+D quits; /help lists commands.", file=sys.stderr)
    while True:
        try:
            line = input("you> " if sys.stdin.isatty() else "")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not line.strip():
            continue
        try:
            if not _command(session, line):
                session.send(line)
        except SystemExit:
            return 0
        except UserError as err:  # e.g. a message too long for the context: say so, keep going
            print(f"llama-desk: error: {err}", file=sys.stderr)
        except KeyboardInterrupt:  # Ctrl+C outside the engine wait: the reply stops, we go on
            print("[stopped]", file=sys.stderr)


def _command(session: TerminalChat, line: str) -> bool:
    """Run an interactive /command; False when ``line`` is a message to send."""
    word, _, rest = line.strip().partition(" ")
    if word in ("/quit", "/exit", "/bye"):
        raise SystemExit(0)
    if word in ("/help", "/?"):
        print(INTERACTIVE_HELP, file=sys.stderr)
    elif word == "/regen":
        session.regenerate()
    elif word == "/edit":
        if not rest.strip():
            raise UserError("/edit needs the new text: /edit TEXT")
        session.edit(0, rest.strip())
    else:
        return False
    return True
