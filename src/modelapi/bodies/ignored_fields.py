"""The X-Ignored-Fields header: the fields a request sent that are not features.

A typo in a key stays visible although the request is answered. Names only (never values),
a few, each cut short.
"""

from __future__ import annotations

from modelapi.schema import IgnoredFields

__all__ = ["IGNORED_FIELDS_HEADER", "ignored_fields_value"]

IGNORED_FIELDS_HEADER = "x-ignored-fields"
_IGNORED_NAME_CHARS = 40


def ignored_fields_value(ignored: IgnoredFields) -> str:
    """The X-Ignored-Fields value: `id, Outcome`, `...` after the last when there were more.

    Each name is cut to 40 characters; a character outside printable ASCII, `%` and `,` are
    percent-encoded as UTF-8 (as in a URL), so a header can carry any key safely.
    """
    from urllib.parse import quote

    names = [
        quote(name[:_IGNORED_NAME_CHARS], safe=" !\"#$&'()*+-./:;<=>?@[\\]^_`{|}~")
        for name in ignored.names
    ]
    return ", ".join(names) + (", ..." if ignored.more else "")
