"""Capability URLs of stored images: whoever holds one may see that image of that session, nothing else.

``/files/SESSION/HASH.png?sig=SIG`` (``&exp=UNIX_TIME`` when URLs expire): the
signature is an HMAC of the session, the image and the expiry under a secret
kept in the store, so every studio process sharing the store makes and checks
the same URLs. They need no API token (a third-party chat client can show the
images of a reply), cannot be guessed, cannot be turned into another image's or
another session's URL, and stop working when their session is deleted (the
route also checks that the image belongs to the session).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from urllib.parse import parse_qs, urlsplit

#: a reference to a stored image: a capability URL (full or from /files/), or a bare hash
_REFERENCE = re.compile(r"(?:^|/files/(?:(?P<session>[0-9a-f]{32})/)?)(?P<hash>[0-9a-f]{64})(?:\.png)?$")
#: capability URLs inside a text (an assistant message a client sends back)
URL_IN_TEXT = re.compile(r"(?:https?://[^\s()]*)?/files/[0-9a-f]{32}/[0-9a-f]{64}\.png\?[\w=&.%-]*")


class ImageUrls:
    """Makes and checks capability URLs with ``secret``; ``seconds`` (if given) is how long one stays valid."""

    def __init__(self, secret: str, seconds: float | None = None) -> None:
        self._key, self.seconds = secret.encode(), seconds

    def path(self, session_id: str, digest: str) -> str:
        """The URL path (and query) of an image of a session; an expiry is rounded up to the minute, so
        the URL of an image stays the same for a while (browsers cache it)."""
        expires = "" if self.seconds is None else str(math.ceil((time.time() + self.seconds) / 60) * 60)
        query = f"sig={self._sign(session_id, digest, expires)}" + (f"&exp={expires}" if expires else "")
        return f"/files/{session_id}/{digest}.png?{query}"

    def valid(self, session_id: str, digest: str, sig: str, expires: str = "") -> bool:
        """Whether ``sig`` (and ``expires``) open the image ``digest`` of ``session_id`` now."""
        if expires and (not expires.isdigit() or int(expires) < time.time()):
            return False
        if not expires and self.seconds is not None:
            return False
        return hmac.compare_digest(sig.encode(), self._sign(session_id, digest, expires).encode())

    def opened(self, reference: str) -> tuple[str | None, str] | None:
        """(session, hash) named by a reference a client sent: a valid capability URL gives its session; a
        bare hash or a URL without a valid signature gives (None, hash) (good only within its own session);
        None when it names no stored image at all."""
        parts = urlsplit(reference)
        match = _REFERENCE.search(parts.path)
        if match is None:
            return None
        session, digest = match.group("session"), match.group("hash")
        query = parse_qs(parts.query)
        sig, expires = query.get("sig", [""])[0], query.get("exp", [""])[0]
        if session and sig and self.valid(session, digest, sig, expires):
            return session, digest
        return None, digest

    def _sign(self, session_id: str, digest: str, expires: str) -> str:
        message = f"{session_id}/{digest}/{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
