"""Markdown to safe rich text: raw HTML escaped, code highlighted by Pygments, images never loaded."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

ACTION_SCHEME = "llamadesk"
SAFE_LINK = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
MAX_HIGHLIGHT = 200_000  # characters of code beyond which highlighting is skipped


@dataclass
class Rendered:
    """HTML for one message and the raw text of each code block (for their Copy links)."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


@lru_cache(maxsize=2)
def _formatter(dark: bool) -> HtmlFormatter[str]:
    return HtmlFormatter(noclasses=True, nowrap=True, style="monokai" if dark else "friendly")


def code_background(dark: bool) -> str:
    return "#272822" if dark else "#f3f4f6"


@lru_cache(maxsize=64)
def _lexer(lang: str) -> Any:
    try:
        return get_lexer_by_name(lang) if lang else TextLexer()
    except ClassNotFound:
        return TextLexer()


def highlight_code(code: str, lang: str, dark: bool) -> str:
    """Inline-styled HTML spans for ``code`` (escaped plain text when too long or unknown)."""
    if len(code) > MAX_HIGHLIGHT:
        return html.escape(code)
    return highlight(code, _lexer(lang.strip().lower()), _formatter(dark))


def _fence(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    lang = token.info.split()[0] if token.info.strip() else ""
    code = token.content
    blocks: list[str] = env["blocks"]
    index = env["first_block"] + len(blocks)
    blocks.append(code)
    spans = highlight_code(code, lang, env["dark"]).rstrip("\n")
    label = html.escape(lang) if lang else "code"
    href = f"{ACTION_SCHEME}:code/{env['message_id']}/{index}"
    bg = code_background(env["dark"])
    return (
        f'<p style="margin-top:6px;margin-bottom:0px;"><small>{label} · '
        f'<a href="{href}">Copy code</a></small></p>'
        f'<pre style="background-color:{bg};margin-top:2px;margin-bottom:8px;">{spans}</pre>\n'
    )


def _image(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = html.escape(token.content or "image")
    if SAFE_LINK.match(src):
        return f'[image: <a href="{html.escape(src, quote=True)}">{alt}</a>]'
    return f"[image: {alt}]"


def _link_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    href = str(tokens[idx].attrGet("href") or "")
    if not SAFE_LINK.match(href):
        return '<a href="">'  # relative, javascript: or file: links do nothing
    return f'<a href="{html.escape(href, quote=True)}">'


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    return md


def render_markdown(text: str, message_id: int = 0, dark: bool = False,
                    first_block: int = 0) -> Rendered:
    """Render ``text`` as Markdown; raw HTML in it shows as text.

    ``first_block`` numbers the Copy links of its code blocks after those of earlier pieces of
    the same message (a streamed reply is rendered one settled piece at a time).
    """
    env: dict[str, Any] = {"blocks": [], "dark": dark, "message_id": message_id,
                           "first_block": first_block}
    body = _markdown().render(text, env)
    return Rendered(body, env["blocks"])


def render_plain(text: str) -> str:
    """Escaped text with line breaks kept (user messages and streaming tails)."""
    return "<p>" + html.escape(text).replace("\n", "<br>") + "</p>"


def settled_length(text: str) -> int:
    """Length of the prefix of ``text`` that ends at a paragraph break outside any code fence.

    While a reply streams, that prefix can be rendered once; only the tail after it changes.
    """
    cut = 0
    inside = False
    pos = 0
    for line in text.splitlines(keepends=True):
        end = pos + len(line)
        if FENCE.match(line):
            inside = not inside
            if not inside and line.endswith("\n"):
                cut = end  # a closed fence is a block of its own
        elif not inside and not line.strip() and line.endswith("\n"):
            cut = end
        pos = end
    return cut
