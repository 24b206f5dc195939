"""Markdown rendering: raw HTML stays text, code is highlighted, images and odd links are inert."""

from __future__ import annotations

from app.ui.markdown import render_markdown, render_plain, settled_length


def test_raw_html_is_shown_as_text() -> None:
    out = render_markdown("Hi <b>bold</b> <script>alert(1)</script> <img src=x>").html
    assert "<b>bold</b>" not in out
    assert "&lt;b&gt;bold&lt;/b&gt;" in out
    assert "<script" not in out and "<img" not in out


def test_code_block_highlighted_and_kept_for_copy() -> None:
    rendered = render_markdown("Text\n\n```python\ndef f():\n    return 1\n```\n", message_id=7)
    assert rendered.code_blocks == ["def f():\n    return 1\n"]
    assert "llamadesk:code/7/0" in rendered.html
    assert "<pre" in rendered.html and "style=" in rendered.html  # inline Pygments colours
    assert "<span" in rendered.html


def test_unknown_language_falls_back_to_plain() -> None:
    rendered = render_markdown("```nosuchlang\nx < y\n```")
    assert "x &lt; y" in rendered.html


def test_images_become_links_never_loaded() -> None:
    out = render_markdown("![cat](https://example.com/cat.png)").html
    assert "<img" not in out
    assert '[image: <a href="https://example.com/cat.png">cat</a>]' in out
    assert "<img" not in render_markdown("![x](file:///etc/passwd)").html


def test_only_web_and_mail_links_are_kept() -> None:
    assert 'href="https://example.com"' in render_markdown("[a](https://example.com)").html
    assert 'href="javascript' not in render_markdown("[a](javascript:alert(1))").html
    assert 'href="file:' not in render_markdown("[a](file:///etc/passwd)").html
    assert 'href=""' in render_markdown("[a](relative/page.html)").html


def test_render_plain_escapes_and_keeps_lines() -> None:
    assert render_plain("a <b>\nc") == "<p>a &lt;b&gt;<br>c</p>"


def test_settled_length_stops_at_paragraphs_outside_fences() -> None:
    assert settled_length("one para") == 0
    assert settled_length("one\n\ntwo") == len("one\n\n")
    text = "intro\n\n```\ncode\n\nmore code"
    assert settled_length(text) == len("intro\n\n")  # the blank line inside the fence is not a cut
    closed = "```\ncode\n```\nafter"
    assert settled_length(closed) == len("```\ncode\n```\n")


def test_tables_have_borders_and_padding() -> None:
    from app.ui.markdown import render_segments

    [html] = render_segments("| a | b |\n|:--|--:|\n| 1 | 2 |\n")
    assert isinstance(html, str)
    assert 'border="1"' in html and 'cellpadding="7"' in html and "border-collapse" in html
    assert '<th align="left"' in html and '<td align="right">2</td>' in html


def test_blockquotes_task_lists_and_bare_links() -> None:
    out = render_markdown("> quoted\n\n- [ ] todo\n- [x] done\n\nsee https://example.com/a_b. now"
                          " and `https://not.a/link`").html
    assert 'bgcolor' in out and "quoted" in out  # the quote's bar
    assert "☐ todo" in out and "☑ done" in out and "list-style-type:none" in out
    assert '<a href="https://example.com/a_b">https://example.com/a_b</a>.' in out
    assert 'href="https://not.a/link"' not in out  # code stays code
    mixed = render_markdown("- [ ] a task\n- a plain item\n").html
    assert "list-style-type:none" not in mixed  # only a list of tasks loses its bullets


def test_top_level_code_blocks_are_segments_of_their_own() -> None:
    from app.ui.markdown import CodeSegment, render_segments

    segments = render_segments("Intro\n\n```sh\nls -l\n```\n\n- item\n\n  ```\n  nested\n  ```\n",
                               message_id=3)
    assert isinstance(segments[0], str) and "Intro" in segments[0]
    code = segments[1]
    assert isinstance(code, CodeSegment) and (code.lang, code.code, code.index) == ("sh", "ls -l\n", 0)
    assert isinstance(segments[2], str) and "llamadesk:code/3/1" in segments[2]  # nested: inline
