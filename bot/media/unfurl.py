"""Link unfurling: the preview images a web page declares (og:image, twitter:image).

Chat clients show these images when a link is posted, so they are what people actually see.
Only the page's <head> is read: the tags live there, and stopping early bounds the work on huge
or hostile pages.
"""

from __future__ import annotations

from html.parser import HTMLParser

from yarl import URL

# In order of preference; og:image:secure_url is the https twin of og:image.
IMAGE_PROPERTIES = ("og:image:secure_url", "og:image", "og:image:url", "twitter:image",
                    "twitter:image:src")
# The head is small; reading more than this of a page gives nothing but work.
MAX_HTML_BYTES = 512 * 1024


class _StopParsing(Exception):
    """Raised by the parser once the head is over."""


class _MetaImages(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            raise _StopParsing
        if tag != "meta":
            return
        values = {name.lower(): (value or "") for name, value in attrs}
        key = (values.get("property") or values.get("name") or "").strip().lower()
        content = values.get("content", "").strip()
        if key in IMAGE_PROPERTIES and content:
            self.found.append((key, content))

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            raise _StopParsing


def page_images(html: bytes, page_url: str, *, limit: int = 3) -> list[str]:
    """Absolute http(s) URLs of the page's preview images, best first, without duplicates.

    Relative URLs are resolved against `page_url` (the final URL after redirects). At most
    `limit` URLs are returned; anything that is not http(s) after resolution is dropped (the
    fetcher would refuse it anyway, but a data: URL is not worth an error line).
    """
    parser = _MetaImages()
    try:
        parser.feed(html[:MAX_HTML_BYTES].decode("utf-8", "replace"))
        parser.close()
    except _StopParsing:
        pass
    ranked = sorted(parser.found, key=lambda item: IMAGE_PROPERTIES.index(item[0]))
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
