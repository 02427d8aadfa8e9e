"""A cookie jar for Locust's FastHttpUser that does nothing while there is nothing to do.

Runs inside Locust's process; imports nothing of Locust, so it can be tested anywhere.
"""

from __future__ import annotations

from http.cookiejar import Cookie, CookieJar
from typing import Any


class LazyCookieJar(CookieJar):
    """Locust's cookie jar (the standard library's), minus its work while it holds no cookie. The stock
    jar walks its empty store and its expiry on every request, and parses every response for cookies:
    that cost a Locust process about as much CPU as our three correlation headers (bench/results.md,
    load-generator section). The bundled app sets no cookie; once anything does, this is the stock jar."""

    holds_cookies = False

    def set_cookie(self, cookie: Cookie) -> None:  # every way a cookie gets into the jar ends here
        self.holds_cookies = True
        super().set_cookie(cookie)

    def add_cookie_header(self, request: Any) -> None:
        if self.holds_cookies:  # else the stock jar adds no header and has nothing to expire
            super().add_cookie_header(request)

    def extract_cookies(self, response: Any, request: Any) -> None:
        headers = response.info()
        if "set-cookie" in headers or "set-cookie2" in headers:  # else the stock jar finds no cookie
            super().extract_cookies(response, request)
