"""`llama-desk engines add|list|remove|check`: remote engines (llama-server, vLLM, OpenAI-compatible)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.errors import UserError

KIND_HELP = ("auto (default: llama-server when it answers /props, vllm when its models are "
             "owned by vllm and it answers /version, else OpenAI-compatible), llama-server "
             "(llama.cpp's server: exact prompts as token ids), vllm (vLLM with a Llama-2-style "
             "model: exact prompts as token ids), openai (Ollama, LM Studio, llama-cpp-python, "
             "hosted APIs: text, the server's prompt format)")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "engines", help="remote engines: llama.cpp servers and OpenAI-compatible servers",
        description="Chat with models served by another program or machine: `chat --engine "
        "NAME`. API keys are read from standard input and kept in the OS keyring, never in a "
        "file. Plain http is for this machine and private networks; anything else leaves them.",
    )
    actions = parser.add_subparsers(dest="engines_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add (or replace) an engine and check it")
    add.add_argument("name", help="a short name (letters, digits, . _ -)")
    add.add_argument("url", help="the server's base URL, e.g. http://127.0.0.1:8080")
    add.add_argument("--kind", default="auto", choices=("auto", "llama-server", "vllm", "openai"),
                     help=KIND_HELP)
    add.add_argument("--key-stdin", action="store_true",
                     help="read the API key from standard input (one line) into the OS keyring")
    add.add_argument("--yes", action="store_true",
                     help="accept plain http to a public host (the conversation travels unencrypted)")
    add.add_argument("--no-check", action="store_true", help="do not contact the server now")
    actions.add_parser("list", help="list the configured engines (no network)")
    remove = actions.add_parser("remove", help="forget an engine and its key")
    remove.add_argument("name")
    check = actions.add_parser("check", help="reachability, kind, models and latency")
    check.add_argument("name", help="an engine's name, or a URL")
    parser.set_defaults(func=run)


def _where(url: str) -> str:
    from app.engine.remote.address import host_of
    from app.netaddr import is_loopback, is_private_host

    host = host_of(url)
    if is_loopback(host):
        return "this machine"
    return "private network" if is_private_host(host, resolve=False) else "leaves your network"


def _confirm_public_http(args: argparse.Namespace, warning: str) -> None:
    print(f"llama-desk: warning: {warning}", file=sys.stderr)
    if args.yes:
        return
    if args.key_stdin or not sys.stdin.isatty():
        raise UserError("Plain http to a public host needs --yes (or use its https:// address).")
    answer = input("Add it anyway? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise UserError("Not added; use the server's https:// address.")


def _read_key() -> str:
    line = sys.stdin.readline()
    if not line.strip():
        raise UserError("No API key on standard input; pipe it in, e.g. "
                        "`printf %s \"$KEY\" | llama-desk engines add NAME URL --key-stdin`.")
    return line.strip()


def _add(args: argparse.Namespace) -> int:
    from app.engine.remote import registry
    from app.engine.remote.address import normalize_url, privacy_warning

    registry.check_name(args.name)
    url = normalize_url(args.url)
    warning = privacy_warning(url)
    public_http = bool(warning) and url.startswith("http://")
    if public_http:
        _confirm_public_http(args, warning or "")
    elif warning:
        print(f"llama-desk: warning: {warning}", file=sys.stderr)
    key = _read_key() if args.key_stdin else None
    config = registry.add_engine(args.name, url, kind=args.kind, key=key, public_http=public_http)
    print(f"Engine {config.name} added: {config.url} ({config.kind}"
          f"{', key in the OS keyring' if config.has_key else ''}).")
    if not args.no_check:
        try:
            _report(config)
        except UserError as err:
            print(f"llama-desk: warning: added, but the check failed: {err}", file=sys.stderr)
    return 0


def _report(config: Any) -> None:
    from app.engine.remote.http import Connection
    from app.engine.remote.probe import LLAMA_CPP_FALLBACK_TEMPLATE, probe

    conn = Connection(config)
    try:
        found = probe(conn, config.kind)
    finally:
        conn.close()
    how = ("prompts sent as token ids in the model's own format"
           if found.kind in ("llama-server", "vllm")
           else "chat messages as text, the prompt format is the server's")
    print(f"  reachable in {found.latency_s * 1000:.0f} ms; kind {found.kind} ({how})")
    if found.kind == "vllm":
        print(f"  vLLM {found.version or '(version not told)'}; prompt format: llama-2 (Meta's "
              "reference algorithm) for a model with Llama's vocabulary, else the server's")
    if found.kind == "llama-server":
        template = found.props.get("chat_template")
        fmt = ("llama-2 (Meta's reference algorithm)" if not template
               or template == LLAMA_CPP_FALLBACK_TEMPLATE or "[INST]" in str(template)
               else "the model's chat template")
        print(f"  prompt format: {fmt}")
    for model in found.models:
        ctx = f", {model.n_ctx:,}-token context" if model.n_ctx else ""
        print(f"  model: {model.id}{ctx}  (chat --engine {config.name} -m {model.id})")
    if not found.models:
        print("  no model is served right now")


def run(args: argparse.Namespace) -> int:
    from app.engine.remote import registry

    action = args.engines_action
    if action == "add":
        return _add(args)
    if action == "remove":
        engine = registry.remove_engine(args.name)
        print(f"Engine {engine.name} removed ({engine.url})"
              f"{' and its key' if engine.has_key else ''}.")
        return 0
    if action == "list":
        engines = registry.list_engines()
        if not engines:
            print("No engines yet; add one with `llama-desk engines add NAME URL`.")
        for e in engines:
            key = "key" if e.has_key else "no key"
            print(f"{e.name}\t{e.url}\t{e.kind}\t{key}\t{_where(e.url)}")
        return 0
    config = registry.adhoc_engine(args.name) if "://" in args.name else \
        registry.get_engine(args.name)
    print(f"Engine {config.name}: {config.url} ({_where(config.url)})")
    _report(config)
    return 0
