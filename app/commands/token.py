"""`llama-desk token set|status|clear`: the Hugging Face token in the OS keyring."""

from __future__ import annotations

import argparse
from typing import Any

from app.errors import UserError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "token", help="store, show or remove the Hugging Face token (OS keyring)",
        description="The token is read from a hidden prompt (never the command line), checked "
        "with the Hub and kept in the OS keyring under the service 'llama-desk'.",
    )
    actions = parser.add_subparsers(dest="token_action", metavar="ACTION", required=True)
    actions.add_parser("set", help="prompt for a token, check it with the Hub, store it")
    status = actions.add_parser("status", help="show the account name (never the token)")
    status.add_argument("--check", action="store_true", help="also verify the token with the Hub")
    actions.add_parser("clear", help="remove the stored token")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.hub import token_store

    if args.token_action == "set":
        import getpass

        try:
            value = getpass.getpass("Hugging Face token (input hidden): ")
        except EOFError:
            raise UserError("No token entered.") from None
        print(token_store.set_token(value).message)
        return 0
    if args.token_action == "clear":
        had = token_store.clear_token()
        print("Token removed." if had else "No token was stored.")
        return 0
    token = token_store.get_token()
    if not token:
        print("No Hugging Face token stored; add one with `llama-desk token set`.")
        if not token_store.keyring_available():
            print(token_store.NO_KEYRING)
        return 0
    account = token_store.account_name() or "?"
    if args.check:
        from app.hub import client

        account = client.whoami(token)
        print(f"Token valid for Hugging Face account {account!r}.")
    else:
        print(f"Token stored for Hugging Face account {account!r} "
              "(use --check to verify it with the Hub).")
    return 0
