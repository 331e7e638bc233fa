"""Hand a message to the configured SMTP server (smtplib).

``smtp.security``: ``none`` (plain SMTP), ``starttls`` (plain connection
upgraded with STARTTLS; refused if the server does not offer it) or ``tls``
(implicit TLS, usually port 465). The server's certificate is always
verified, against ``smtp.ca_file`` when given, else the system's trusted
authorities. With ``smtp.user`` set, the client logs in with the password
from the environment variable ``smtp.password_env``; a login is never sent
over an unencrypted connection to a host other than this machine.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from iopreport.config import SmtpConfig

#: Hosts where a login over plain SMTP does not cross the network.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


class SendError(Exception):
    """The server did not accept the message; the text says why (recorded for the retry)."""


@dataclass(frozen=True)
class Delivery:
    """What the server accepted."""

    accepted: tuple[str, ...]
    refused: dict[str, str]  # recipients the server refused, with its reply


def tls_context(smtp: SmtpConfig) -> ssl.SSLContext:
    """A verifying client context: ``smtp.ca_file`` or the system's authorities."""
    try:
        return ssl.create_default_context(cafile=smtp.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise SendError(f"smtp.ca_file {smtp.ca_file}: cannot be read as PEM ({exc})") from None


def password(smtp: SmtpConfig) -> str:
    """The SMTP password from the environment variable named by ``smtp.password_env``."""
    if not smtp.password_env:
        raise SendError("smtp.user is set but smtp.password_env names no environment variable")
    value = os.environ.get(smtp.password_env)
    if value is None:
        raise SendError(f"environment variable {smtp.password_env} (smtp.password_env) is not set")
    return value


def send_message(message: EmailMessage, recipients: tuple[str, ...], smtp: SmtpConfig) -> Delivery:
    """Send ``message`` to ``recipients`` (the envelope) through the configured server.

    Returns
    -------
    Delivery
        Accepted and refused recipients; the message was accepted for at
        least one recipient.

    Raises
    ------
    SendError
        Connection, TLS, login or protocol failure, or every recipient
        refused: the message was not accepted.
    """
    if not recipients:
        raise SendError("no recipients")
    host, port = smtp.host, smtp.effective_port
    where = f"{host}:{port}"
    try:
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(host, port, timeout=smtp.timeout_s, context=tls_context(smtp))
        else:
            client = smtplib.SMTP(host, port, timeout=smtp.timeout_s)
        with client:
            client.ehlo()
            if smtp.security == "starttls":
                if not client.has_extn("starttls"):
                    raise SendError(f"{where}: the server does not offer STARTTLS")
                client.starttls(context=tls_context(smtp))
                client.ehlo()
            if smtp.user:
                if smtp.security == "none" and host not in LOCAL_HOSTS:
                    raise SendError(
                        f"{where}: refusing to send the password unencrypted; "
                        "set smtp.security to starttls or tls"
                    )
                client.login(smtp.user, password(smtp))
            refused = client.send_message(message, to_addrs=list(recipients))
    except SendError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        reasons = "; ".join(f"{a}: {c} {_text(r)}" for a, (c, r) in exc.recipients.items())
        raise SendError(f"{where}: every recipient refused ({reasons})") from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(f"{where}: {exc.smtp_code} {_text(exc.smtp_error)}") from None
    except ssl.SSLError as exc:
        raise SendError(f"{where}: TLS failed: {exc}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"{where}: {type(exc).__name__}: {exc}") from None
    refused_text = {a: f"{c} {_text(r)}" for a, (c, r) in refused.items()}
    accepted = tuple(r for r in recipients if r not in refused)
    return Delivery(accepted=accepted, refused=refused_text)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
