"""Meta's signed link: what is accepted, what each malformed link is told, what may be shown."""

from __future__ import annotations

import logging
import pickle
import time

import pytest

from app.hub.meta_catalogue import META_MODELS, find_meta_model
from app.hub.meta_link import MetaLink, MetaLinkError, RedactFilter, guard_http_logs, redact
from tests.hub.meta_cdn import cloudfront_policy

SIG = "Zm9vYmFyU2lnbmF0dXJlVmFsdWUxMjM0NTY3ODkw~XYZ"
KEY = "K3LLAMATESTPAIR"


def link(star: str = "*", *, host: str = "https://download.llamameta.net", expires: float = 0,
         query: str | None = None) -> str:
    policy = cloudfront_policy(f"{host}/*", expires or time.time() + 20 * 3600)
    query = query if query is not None else f"Policy={policy}&Signature={SIG}&Key-Pair-Id={KEY}"
    return f"{host}/{star}?{query}"


def refused(text: str) -> str:
    with pytest.raises(MetaLinkError) as caught:
        MetaLink.parse(text)
    message = str(caught.value)
    assert SIG not in message and KEY not in message and "eyJ" not in message  # the policy
    return message


def test_a_link_from_the_mail_is_accepted_with_its_expiry() -> None:
    expires = time.time() + 20 * 3600
    parsed = MetaLink.parse(f"  <{link(expires=expires)}>\n")  # as pasted from a mail client
    assert parsed.host == "download.llamameta.net"
    assert parsed.expires == int(expires) and not parsed.expired()
    assert parsed.expired(now=expires + 1)
    assert parsed.shown.startswith("download.llamameta.net, valid until ")
    assert parsed.shown.endswith("(20 h left)")
    assert SIG not in repr(parsed) and SIG not in str(parsed) and SIG not in f"{parsed!r}"


def test_the_star_is_replaced_by_each_path_as_download_sh_does() -> None:
    parsed = MetaLink.parse(link())
    url = parsed.url_for("llama-2-7b-chat/consolidated.00.pth")
    assert url.startswith("https://download.llamameta.net/llama-2-7b-chat/consolidated.00.pth?")
    assert url.endswith(f"&Signature={SIG}&Key-Pair-Id={KEY}")
    assert parsed.redacted_for("tokenizer.model") == "https://download.llamameta.net/tokenizer.model"
    encoded = MetaLink.parse(link("%2a"))  # some mail clients percent-encode the star
    assert encoded.url_for("LICENSE") == parsed.url_for("LICENSE")


@pytest.mark.parametrize("text,expected", [
    (link(""), "has no `*` where each file's name goes"),
    (link("*/*"), "has 2 `*`"),
    (link().replace("https://", "http://"), "is not https"),
    ("download.llamameta.net/*?Policy=x", "That is not a link"),
    ("", "That is not a link"),
    (link(query=f"Signature={SIG}&Key-Pair-Id={KEY}"), "missing its signature (Policy)"),
    (link(query="Policy=abc"), "missing its signature (Signature, Key-Pair-Id)"),
])
def test_malformed_links_are_told_apart_without_repeating_the_link(text: str, expected: str) -> None:
    assert expected in refused(text)


def test_plain_http_is_accepted_only_for_this_computer() -> None:
    for host in ("http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"):
        assert MetaLink.parse(link(host=host)).scheme == "http"
    assert "is not https" in refused(link(host="http://192.168.1.5:8080"))


def test_a_link_is_never_pickled_and_redaction_covers_every_signing_field() -> None:
    parsed = MetaLink.parse(link())
    with pytest.raises(TypeError):
        pickle.dumps(parsed)
    text = f"GET {parsed.url_for('LICENSE')} 403"
    assert SIG not in redact(text) and "Policy=<redacted>" in redact(text)
    assert SIG not in parsed.scrub(text) and "download.llamameta.net/LICENSE" in parsed.scrub(text)


def test_the_http_client_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    guard_http_logs()
    guard_http_logs()  # idempotent
    assert sum(isinstance(f, RedactFilter) for f in logging.getLogger("httpx2").filters) == 1
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx2").info('HTTP Request: %s %s "%s"', "GET",
                                     MetaLink.parse(link()).url_for("LICENSE"), "200 OK")
    assert SIG not in caplog.text and "Signature=<redacted>" in caplog.text


def test_models_follow_download_sh() -> None:
    shards = {m.model_id: m.shards for m in META_MODELS}
    assert shards == {"llama-2-7b-chat": 1, "llama-2-7b": 1, "llama-2-13b-chat": 2,
                      "llama-2-13b": 2, "llama-2-70b-chat": 8, "llama-2-70b": 8}
    assert find_meta_model("70B-chat").model_files() == (
        "llama-2-70b-chat/checklist.chk", "llama-2-70b-chat/params.json",
        *(f"llama-2-70b-chat/consolidated.{n:02d}.pth" for n in range(8)))
    assert find_meta_model("Llama-2-13b").script_name == "13B"
    with pytest.raises(Exception, match="Unknown Meta model '7B-instruct'; choose one of: "):
        find_meta_model("7B-instruct")
