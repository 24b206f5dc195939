"""Markdown to safe rich text: raw HTML escaped, code highlighted by Pygments, images never loaded.

A message is rendered as segments: prose (HTML for one text document) and code blocks (shown by
their own widget, which scrolls long lines inside itself). Tables get borders and padding,
blockquotes a bar, task lists check boxes, bare web addresses become links.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

from app.ui.theme import DARK, LIGHT, Colors

ACTION_SCHEME = "llamadesk"
SAFE_LINK = re.compile(r"^(https?://|mailto:)", re.IGNORECASE)
FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
BARE_URL = re.compile(r"https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]]")
TASK = re.compile(r"^\[([ xX])\]\s+")
MAX_HIGHLIGHT = 200_000  # characters of code beyond which highlighting is skipped
HEADING_SIZES = {"h1": "x-large", "h2": "large", "h3": "medium", "h4": "medium", "h5": "medium",
                 "h6": "medium"}


def document_css(c: Colors) -> str:
    """The default style sheet of every message document."""
    return (f"p {{ margin-top: 0px; margin-bottom: 10px; }} li {{ margin-bottom: 3px; }}"
            f" ul, ol {{ margin-top: 0px; margin-bottom: 10px; }} a {{ color: {c.link}; }}"
            " pre { margin-top: 4px; margin-bottom: 10px; }")


@dataclass
class CodeSegment:
    """One fenced code block: its language, raw text (for Copy) and highlighted HTML spans."""

    lang: str
    code: str
    spans: str
    index: int  # the block's number within its message (Copy buttons, tests)


@dataclass
class Rendered:
    """HTML for one message and the raw text of each code block (for their Copy links)."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


Segment = str | CodeSegment  # prose HTML, or a code block


@lru_cache(maxsize=2)
def _formatter(dark: bool) -> HtmlFormatter[str]:
    return HtmlFormatter(noclasses=True, nowrap=True, style="monokai" if dark else "friendly")


def code_background(dark: bool) -> str:
    return (DARK if dark else LIGHT).code_bg


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


def _colors(env: dict[str, Any]) -> Colors:
    return DARK if env.get("dark") else LIGHT


def _code_segment(token: Token, env: dict[str, Any]) -> CodeSegment:
    lang = token.info.split()[0] if token.info.strip() else ""
    blocks: list[str] = env["blocks"]
    index = env["first_block"] + len(blocks)
    blocks.append(token.content)
    spans = highlight_code(token.content, lang, env["dark"]).rstrip("\n")
    return CodeSegment(lang, token.content, spans, index)


def code_html(seg: CodeSegment, message_id: int, dark: bool) -> str:
    """A code block inside a prose document (a list item's code, or a tail still streaming)."""
    href = f"{ACTION_SCHEME}:code/{message_id}/{seg.index}"
    label = html.escape(seg.lang) if seg.lang else "code"
    c = DARK if dark else LIGHT
    return (
        f'<p style="margin-top:6px;margin-bottom:0px;"><span style="color:{c.muted};">{label}'
        f' · </span><a href="{href}">Copy code</a></p>'
        f'<pre style="background-color:{c.code_bg};white-space:pre-wrap;margin-top:2px;'
        f'margin-bottom:10px;">{seg.spans}</pre>\n'
    )


def _fence(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return code_html(_code_segment(tokens[idx], env), env["message_id"], env["dark"])


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


def _code_inline(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    c = _colors(env)
    return (f'<code style="background-color:{c.code_inline};">&#8202;'
            f"{html.escape(tokens[idx].content)}&#8202;</code>")


def _table_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    c = _colors(env)
    return (f'<table border="1" cellspacing="0" cellpadding="7" style="border-collapse:collapse;'
            f'border-color:{c.faint};border-style:solid;margin-top:4px;margin-bottom:12px;">')


def _cell_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    align = str(token.attrGet("style") or "").removeprefix("text-align:")
    attrs = f' align="{align}"' if align in ("left", "right", "center") else ""
    if token.tag == "th":
        attrs += f' bgcolor="{_colors(env).table_header}"'
    return f"<{token.tag}{attrs}>"


def _quote_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    c = _colors(env)
    return (f'<table cellspacing="0" cellpadding="0" style="margin-top:2px;margin-bottom:10px;">'
            f'<tr><td width="3" bgcolor="{c.faint}"></td>'
            f'<td style="padding-left:12px;color:{c.muted};">')


def _quote_close(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    return "</td></tr></table>"


def _list_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    if token.meta.get("tasks"):
        return '<ul style="list-style-type:none;">'
    return str(renderer.renderToken(tokens, idx, options, env))


def _heading_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any,
                  env: Any) -> str:
    tag = tokens[idx].tag
    return (f'<{tag} style="font-size:{HEADING_SIZES.get(tag, "medium")};font-weight:600;'
            'margin-top:12px;margin-bottom:6px;">')


def _tasks(state: StateCore) -> None:
    """``- [ ] todo`` / ``- [x] done`` list items get a check box instead of the bullet."""
    tokens = state.tokens
    for i, token in enumerate(tokens):
        if token.type != "bullet_list_open":
            continue
        items = [j for j in range(i + 1, len(tokens))
                 if tokens[j].type == "list_item_open" and tokens[j].level == token.level + 1]
        marked = 0
        for j in items:
            inline = next((t for t in tokens[j + 1:j + 3] if t.type == "inline"), None)
            match = TASK.match(inline.content) if inline is not None else None
            if inline is None or match is None or not inline.children:
                continue
            first = inline.children[0]
            if first.type == "text" and TASK.match(first.content):
                box = "☑" if match.group(1) in "xX" else "☐"
                first.content = f"{box} " + TASK.sub("", first.content, count=1)
                marked += 1
        if marked and marked == len(items):
            token.meta["tasks"] = True


def _linkify(state: StateCore) -> None:
    """Bare http(s) addresses in text (outside links and code) become links."""
    for token in state.tokens:
        if token.type != "inline" or not token.children:
            continue
        out: list[Token] = []
        depth = 0
        for child in token.children:
            if child.type == "link_open":
                depth += 1
            elif child.type == "link_close":
                depth -= 1
            if child.type != "text" or depth or not BARE_URL.search(child.content):
                out.append(child)
                continue
            last = 0
            for match in BARE_URL.finditer(child.content):
                if match.start() > last:
                    out.append(_text(child.content[last:match.start()]))
                url = match.group(0)
                opener = Token("link_open", "a", 1)
                opener.attrs = {"href": url}
                out += [opener, _text(url), Token("link_close", "a", -1)]
                last = match.end()
            if last < len(child.content):
                out.append(_text(child.content[last:]))
        token.children = out


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.core.ruler.push("task_lists", _tasks)
    md.core.ruler.push("bare_links", _linkify)
    for name, rule in (("fence", _fence), ("code_block", _fence), ("image", _image),
                       ("link_open", _link_open), ("code_inline", _code_inline),
                       ("table_open", _table_open), ("th_open", _cell_open),
                       ("td_open", _cell_open), ("blockquote_open", _quote_open),
                       ("blockquote_close", _quote_close), ("bullet_list_open", _list_open),
                       ("heading_open", _heading_open)):
        md.add_render_rule(name, rule)
    return md


def _env(message_id: int, dark: bool, first_block: int) -> dict[str, Any]:
    return {"blocks": [], "dark": dark, "message_id": message_id, "first_block": first_block}


def render_segments(text: str, message_id: int = 0, dark: bool = False,
                    first_block: int = 0) -> list[Segment]:
    """``text`` as prose HTML and code blocks, in order; raw HTML in it shows as text.

    Code blocks at the top level become ``CodeSegment``s (numbered from ``first_block``, so a
    reply rendered one settled piece at a time numbers its blocks in order); code nested in a
    list stays in the prose.
    """
    md = _markdown()
    env = _env(message_id, dark, first_block)
    tokens = md.parse(text, env)
    out: list[Segment] = []
    prose: list[Token] = []

    def flush() -> None:
        if prose:
            body = md.renderer.render(prose, md.options, env)
            if body.strip():
                out.append(body)
            prose.clear()

    for token in tokens:
        if token.type in ("fence", "code_block") and token.level == 0:
            flush()
            out.append(_code_segment(token, env))
        else:
            prose.append(token)
    flush()
    return out


def render_markdown(text: str, message_id: int = 0, dark: bool = False,
                    first_block: int = 0) -> Rendered:
    """Render ``text`` as one HTML document (code blocks inline, with Copy links).

    ``first_block`` numbers the Copy links of its code blocks after those of earlier pieces of
    the same message.
    """
    env = _env(message_id, dark, first_block)
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
