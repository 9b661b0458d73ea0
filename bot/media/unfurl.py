"""Link unfurling: the preview images a web page declares (og:image, twitter:image).

Chat clients show these images when a link is posted, so they are what people actually see.
Pages are hostile input: Python's `html.parser` is quadratic on markup like `<a <a <a …`
(64 KiB stalled a whole bot for 67 s), so the page is parsed by selectolax's Lexbor engine (a
linear-time HTML5 parser in C), on at most its first `MAX_HTML_BYTES`, in a worker thread and
under a deadline (`preview_images`), never on the event loop. Only `<meta>` tags of the page's
head are read: the tags live there.
"""

from __future__ import annotations

import asyncio

from selectolax.lexbor import LexborHTMLParser
from yarl import URL

# In order of preference; og:image:secure_url is the https twin of og:image.
IMAGE_PROPERTIES = (
    "og:image:secure_url",
    "og:image",
    "og:image:url",
    "twitter:image",
    "twitter:image:src",
)
# The head is small; reading more than this of a page gives nothing but work.
MAX_HTML_BYTES = 64 * 1024
# Parsing 64 KiB takes a few milliseconds; a page that takes longer gets no preview scanned.
PARSE_DEADLINE_S = 2.0


class PreviewTimeout(TimeoutError):
    """The page could not be parsed within the deadline."""


def _meta_images(html: bytes) -> list[tuple[str, str]]:
    tree = LexborHTMLParser(html[:MAX_HTML_BYTES])
    head = tree.head
    found: list[tuple[str, str]] = []
    for node in head.css("meta") if head is not None else ():
        values = {name.lower(): (value or "") for name, value in node.attributes.items()}
        key = (values.get("property") or values.get("name") or "").strip().lower()
        content = values.get("content", "").strip()
        if key in IMAGE_PROPERTIES and content:
            found.append((key, content))
    return found


def page_images(html: bytes, page_url: str, *, limit: int = 3) -> list[str]:
    """Absolute http(s) URLs of the page's preview images, best first, without duplicates.
    Blocking (a few ms for 64 KiB): on the event loop call `preview_images` instead.

    Relative URLs are resolved against `page_url` (the final URL after redirects). At most
    `limit` URLs are returned; anything that is not http(s) after resolution is dropped (the
    fetcher would refuse it anyway, but a data: URL is not worth an error line).
    """
    ranked = sorted(_meta_images(html), key=lambda item: IMAGE_PROPERTIES.index(item[0]))
    base = URL(page_url)
    urls: list[str] = []
    for _, content in ranked:
        try:
            absolute = base.join(URL(content))
        except ValueError:
            continue
        text = str(absolute)
        if absolute.scheme in ("http", "https") and text not in urls:
            urls.append(text)
        if len(urls) >= limit:
            break
    return urls


async def preview_images(
    html: bytes, page_url: str, *, limit: int = 3, deadline_s: float = PARSE_DEADLINE_S
) -> list[str]:
    """`page_images` in a worker thread, under `deadline_s`. Raises PreviewTimeout."""
    try:
        async with asyncio.timeout(deadline_s):
            return await asyncio.to_thread(
                page_images, html[:MAX_HTML_BYTES], page_url, limit=limit
            )
    except TimeoutError as exc:
        raise PreviewTimeout(f"the page took over {deadline_s:g} s to parse") from exc
