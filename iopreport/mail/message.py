"""The e-mail of one night's summary to one subscriber (:class:`email.message.EmailMessage`).

Structure (RFC 2046 / RFC 2387)::

    multipart/alternative
      text/plain                    the plain-text alternative
      multipart/related
        text/html                   refers to each plot as <img src="cid:...">
        image/png  (Content-ID)     one per source with a plot, inline

The Message-ID is a function of (night, subscriber) only, so a message sent
again after a crash carries the same Message-ID and mail systems and
clients can recognise it as the same message (docs/summaries.md, "Retries").
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from iopreport import urls
from iopreport.config import SmtpConfig, SubscriberConfig
from iopreport.mail.render import Rendered, cid_src, render_summary
from iopreport.mail.summary import NightSummary

#: Content-Transfer-Encoding of the text and HTML parts.
TEXT_ENCODING = "quoted-printable"
#: Domain of Message-IDs when the From address has none.
FALLBACK_DOMAIN = "iopreport.invalid"


@dataclass(frozen=True)
class Outgoing:
    """A message ready to send, with its envelope recipients (To + Cc + Bcc)."""

    message: EmailMessage
    recipients: tuple[str, ...]
    rendered: Rendered

    @property
    def message_id(self) -> str:
        return self.message["Message-ID"]


def message_id(night: dt.date, subscriber: str, sender: str) -> str:
    """Deterministic Message-ID of ``night``'s summary to ``subscriber``.

    ``<iopreport-summary.2024-10-08.blazar-group.3f1c0a9b2e@example.org>``:
    the slug keeps it readable, the hash keeps names that share a slug apart,
    the domain is the From address's.
    """
    _, address = email.utils.parseaddr(sender)
    domain = address.rpartition("@")[2] or FALLBACK_DOMAIN
    digest = hashlib.sha256(subscriber.encode("utf-8")).hexdigest()[:10]
    return f"<iopreport-summary.{night.isoformat()}.{urls.slug(subscriber)}.{digest}@{domain}>"


def envelope_recipients(subscriber: SubscriberConfig) -> tuple[str, ...]:
    """Bare addresses of To, Cc and Bcc, each once (Bcc never appears in a header)."""
    seen: dict[str, None] = {}
    for value in (*subscriber.to, *subscriber.cc, *subscriber.bcc):
        _, address = email.utils.parseaddr(value)
        seen.setdefault(address, None)
    return tuple(seen)


def build_message(
    summary: NightSummary,
    subscriber: SubscriberConfig,
    smtp: SmtpConfig,
    templates_dir: Path | str,
) -> Outgoing:
    """The complete message of ``summary`` (already limited to the subscriber's sources)."""
    rendered = render_summary(summary, templates_dir, image_src=cid_src)
    message = EmailMessage()
    message["Subject"] = summary.subject
    message["From"] = smtp.sender
    message["To"] = ", ".join(subscriber.to)
    if subscriber.cc:
        message["Cc"] = ", ".join(subscriber.cc)
    reply_to = smtp.reply_to or smtp.contact_email
    if reply_to:
        message["Reply-To"] = reply_to
    generated = summary.generated_at.replace(tzinfo=dt.UTC)
    message["Date"] = email.utils.format_datetime(generated)
    message["Message-ID"] = message_id(summary.night, subscriber.name, smtp.sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message["X-Iopreport-Night"] = summary.night.isoformat()
    # quoted-printable keeps the message 7-bit clean for relays without 8BITMIME
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte=TEXT_ENCODING)
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte=TEXT_ENCODING)
    html_part = message.get_payload()[1]
    for line in summary.sources:
        if line.plot_png:
            html_part.add_related(
                line.plot_png,
                maintype="image",
                subtype="png",
                cid=f"<{line.plot_cid}>",
                disposition="inline",
                filename=f"{line.plot_cid}.png",
            )
    return Outgoing(message, envelope_recipients(subscriber), rendered)
