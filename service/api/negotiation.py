"""Content negotiation: which media type answers a request (RFC 9110 section 12.5.1).

``Accept`` ranks the media types an operation offers: each offer gets the quality of the most
specific range that matches it (``type/subtype`` over ``type/*`` over ``*/*``); an offer whose
quality is 0, or that no range matches, is not acceptable. The offers with the highest quality
tie, and the spec's ``format`` breaks the tie when it names one of them, else the operation's
order does. So ``format`` decides when ``Accept`` is absent or ``*/*``, and an ``Accept`` that
names one type wins over ``format``.

When ``Accept`` allows none of the offers, it is disregarded (RFC 9110 allows either) if it
allows ``application/json``, the type of every error answer: openapi-generator's clients send
``Accept: application/json`` to binary operations because their errors are JSON. Otherwise
the answer is 406.
"""

from __future__ import annotations

from .errors import NotAcceptableError


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        kind, _, subtype = media.lower().partition("/")
        if not kind or not subtype:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((kind, subtype, quality))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, str, float]]) -> float:
    kind, _, subtype = offer.partition("/")
    best, best_specificity = 0.0, -1
    for range_kind, range_subtype, quality in ranges:
        if range_kind == kind and range_subtype == subtype:
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif range_kind == "*" and range_subtype == "*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best, best_specificity = quality, specificity
    return best


ERRORS_TYPE = "application/json"


def allows(accept: str | None, media_type: str) -> bool:
    """Whether ``accept`` (absent: anything) allows ``media_type``."""
    ranges = _ranges(accept or "")
    return not ranges or _quality(media_type, ranges) > 0


def acceptable(accept: str | None, offers: tuple[str, ...]) -> tuple[str, ...]:
    """The offers ``accept`` allows with the highest quality (ties keep the offers' order).

    All offers when ``accept`` is absent, or allows none of them but allows JSON; raises
    ``NotAcceptableError`` (406) when it allows neither.
    """
    ranges = _ranges(accept or "")
    if not ranges:
        return offers
    scored = [(offer, _quality(offer, ranges)) for offer in offers]
    allowed = sorted((item for item in scored if item[1] > 0), key=lambda item: -item[1])
    if not allowed:
        if _quality(ERRORS_TYPE, ranges) > 0:
            return offers
        shown = (accept or "").strip()[:200]
        raise NotAcceptableError(
            f"the Accept header ({shown!r}) allows none of the media types this operation "
            f"answers: {', '.join(offers)}"
        )
    top = allowed[0][1]
    return tuple(offer for offer, quality in allowed if quality == top)


def choose(candidates: tuple[str, ...], preferred: str) -> str:
    """``preferred`` (the spec's ``format``) if among the best ``candidates``, else the first."""
    return preferred if preferred in candidates else candidates[0]
