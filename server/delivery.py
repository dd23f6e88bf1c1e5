"""What a send to the outside world (an SMS gateway, the mail relay) answers when it fails:
SendFailed, shared by server/sms.py, server/mailer.py and the outbox worker that retries them."""

from __future__ import annotations


class SendFailed(Exception):
    """A send that did not go through. ``final``: the provider refused this message and retrying
    the same request cannot help (a 4xx, an SMTP 5xx); otherwise the outbox retries later."""

    def __init__(self, reason: str, *, final: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final

    def __repr__(self) -> str:
        return f"SendFailed({self.reason!r}, final={self.final})"
