"""Sending the night summary to a real SMTP server (aiosmtpd) on 127.0.0.1 (issue 8).

Plain SMTP, STARTTLS with login and implicit TLS, with a certificate authority
made in the test (trustme) that the client must verify; a server that is down
and then up; the crash window between the server's acceptance and the record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import socket
import ssl
from email import policy
from email.parser import BytesParser

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from mail_data import NIGHT, add_result, configure
from test_cli import run

from iopreport.catalog import load_catalog, sync_catalog
from iopreport.config import load_config
from iopreport.errors import UsageError
from iopreport.mail import log as sendlog
from iopreport.mail import queue_night, send_due, send_night
from iopreport.mail.content import build_night_summary
from iopreport.mail.message import build_message, message_id
from iopreport.mail.send import send_message
from iopreport.store import RunLog, SentSummary, close_store, open_store

T0 = dt.datetime(2024, 10, 9, 7, 0)
SENDER = "iopreport <summaries@obs.example.org>"
LOGIN, PASSWORD, PASSWORD_ENV = "night", "s3cret pass", "IOPREPORT_TEST_SMTP_PASSWORD"


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.original_content,
                "authenticated": session.authenticated,
                "tls": session.ssl is not None  # STARTTLS, or an implicit TLS socket:
                or server.transport.get_extra_info("ssl_object") is not None,
            }
        )
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == LOGIN.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    """start(port, **options) -> (Controller, Inbox); every server is stopped afterwards."""
    controllers = []

    def start(port, **options):
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return controller, inbox

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A certificate authority, a server context for 127.0.0.1 and the CA's PEM file."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return server_context, ca_file


@pytest.fixture
def site(project):
    """A project whose store holds a night with an alert (BL Lac) and a quiet source."""
    config = load_config(project / "config.toml")
    open_store(config.database_path)
    sync_catalog(load_catalog(config.paths.catalog))
    for days, mag in ((5, 13.70), (3, 13.72), (1, 13.60)):
        when = NIGHT - dt.timedelta(days=days)
        add_result("2200+420", "OSN-T090", when, mode="photometry", mag=mag, mag_err=0.02)
    add_result("2200+420", "OSN-T090", NIGHT, mode="photometry", mag=13.10, mag_err=0.02)
    add_result("2200+420", "OSN-T090", NIGHT, mode="polarimetry", p=0.1, p_err=0.01, chi=40)
    add_result("2251+158", "OSN-T090", NIGHT - dt.timedelta(days=2), mode="photometry",
               mag=15.45, mag_err=0.03)  # fmt: skip
    add_result("2251+158", "OSN-T090", NIGHT, mode="photometry", mag=15.50, mag_err=0.03)
    yield project
    close_store()


def setup_mail(project, port, subscribers=None, **smtp):
    """Point the project's [smtp] at 127.0.0.1:port and set its subscribers; load it."""
    subscribers = subscribers or [
        {"name": "group", "to": ["a@x.org"], "cc": ["b@x.org"], "bcc": ["c@x.org"]}
    ]
    values = {
        "host": "127.0.0.1",
        "port": port,
        "from": SENDER,
        "reply_to": "desk@obs.example.org",
        "site_url": "https://obs.example.org/site/",
        "timeout_s": 10,
        "security": "none",
        "user": "",
        "password_env": "",
        "ca_file": "",  # the system's authorities
        **smtp,
    }
    configure(project / "config.toml", smtp=values, subscribers=subscribers)
    return load_config(project / "config.toml")


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_message_parsed_back_from_the_server(site, smtp_server):
    port = free_port()
    _, inbox = smtp_server(port)
    config = setup_mail(site, port)
    outcomes = send_night(config, NIGHT, now=T0)
    assert [(o.subscriber, o.status) for o in outcomes] == [("group", "sent")]
    (received,) = inbox.messages
    assert received["to"] == ["a@x.org", "b@x.org", "c@x.org"]  # Bcc only in the envelope
    assert received["from"] == "summaries@obs.example.org"
    message = parse(received["data"])
    assert message["To"] == "a@x.org" and message["Cc"] == "b@x.org" and "Bcc" not in message
    assert message["From"] == SENDER and message["Reply-To"] == "desk@obs.example.org"
    assert message["Subject"] == "iopreport night 2024-10-08: 2 sources, 2 alerts"
    assert message["Message-ID"] == message_id(NIGHT, "group", SENDER)
    assert message["Message-ID"].endswith("@obs.example.org>")
    # structure: alternative(text/plain, related(text/html, image/png...))
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert received["data"].isascii()  # 7-bit clean: quoted-printable text, base64 images
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert [image.get_content_type() for image in images] == ["image/png", "image/png"]
    content_ids = {image["Content-ID"].strip("<>") for image in images}
    html = html_part.get_content()
    assert set(re.findall(r'src="cid:([^"]+)"', html)) == content_ids
    assert all(image.get_content().startswith(b"\x89PNG") for image in images)
    assert all(image.get_content_disposition() == "inline" for image in images)
    # links and both alternatives
    assert 'href="https://obs.example.org/site/sources/2200p420.html"' in html
    assert 'href="https://obs.example.org/site/nights/2024-10-08/osn-t090.html"' in html
    text = plain.get_content()
    assert "https://obs.example.org/site/summaries/2024-10-08.html" in text
    for part in (text, html):
        assert "2200+420" in part and "2251+158" in part
        assert "R magnitude changed by -0.50 mag (brighter) since 2024-10-07" in part
    row = SentSummary.get(night=NIGHT, subscriber="group")
    assert (row.status, row.attempts, row.sent_at, row.message_id) == (
        "sent",
        1,
        T0,
        message["Message-ID"],
    )
    # asked again: nothing is sent twice
    again = send_night(config, NIGHT, now=T0 + dt.timedelta(hours=1))
    assert again[0].status == "sent" and again[0].detail.startswith("already sent")
    assert send_due(config, now=T0 + dt.timedelta(hours=20)) == []  # before 08:00 the next day
    assert len(inbox.messages) == 1


def test_starttls_login_and_certificate_verification(site, smtp_server, tls, monkeypatch):
    server_context, ca_file = tls
    port = free_port()
    _, inbox = smtp_server(
        port,
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    login = {"security": "starttls", "user": LOGIN, "password_env": PASSWORD_ENV}
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    config = setup_mail(site, port, ca_file=str(ca_file), **login)
    queue_night(config, NIGHT, now=T0)
    # 1. the password's variable is not set
    now = T0
    (outcome,) = send_due(config, now=now)
    assert outcome.status == "failed"
    assert f"environment variable {PASSWORD_ENV} (smtp.password_env) is not set" in outcome.detail
    # 2. the system's authorities do not know the test CA: the certificate is refused
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    config = setup_mail(site, port, **login)
    now += dt.timedelta(minutes=20)
    (outcome,) = send_due(config, now=now)
    assert outcome.status == "failed" and "CERTIFICATE_VERIFY_FAILED" in outcome.detail
    # 3. trusted, wrong password
    config = setup_mail(site, port, ca_file=str(ca_file), **login)
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    now += dt.timedelta(minutes=40)
    (outcome,) = send_due(config, now=now)
    assert outcome.status == "failed" and "535" in outcome.detail
    assert inbox.messages == []
    # 4. all right
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    now += dt.timedelta(minutes=80)
    (outcome,) = send_due(config, now=now)
    assert outcome.status == "sent" and outcome.attempts == 4
    (received,) = inbox.messages
    assert received["authenticated"] and received["tls"]
    assert parse(received["data"])["Message-ID"] == message_id(NIGHT, "group", SENDER)


def test_implicit_tls(site, smtp_server, tls):
    server_context, ca_file = tls
    port = free_port()
    _, inbox = smtp_server(port, ssl_context=server_context)
    config = setup_mail(site, port, security="tls", ca_file=str(ca_file))
    (outcome,) = send_night(config, NIGHT, now=T0)
    assert outcome.status == "sent"
    assert len(inbox.messages) == 1 and inbox.messages[0]["tls"]


def test_server_down_then_up_sent_exactly_once(site, smtp_server):
    port = free_port()
    config = setup_mail(site, port)
    queue_night(config, NIGHT, now=T0)
    (outcome,) = send_due(config, now=T0)
    assert outcome.status == "failed" and "Connection refused" in outcome.detail
    assert outcome.next_attempt_at == T0 + dt.timedelta(minutes=20)  # retry_interval_minutes
    assert send_due(config, now=T0 + dt.timedelta(minutes=10)) == []  # not due yet
    _, inbox = smtp_server(port)
    (outcome,) = send_due(config, now=T0 + dt.timedelta(minutes=20))
    assert outcome.status == "sent" and outcome.attempts == 2
    assert queue_night(config, NIGHT, now=T0 + dt.timedelta(hours=1))[0].status == "sent"
    for hours in (1, 5, 20):
        assert send_due(config, now=T0 + dt.timedelta(hours=hours)) == []
    assert len(inbox.messages) == 1
    row = SentSummary.get(night=NIGHT, subscriber="group")
    assert row.first_attempt_at == T0 and row.last_attempt_at == T0 + dt.timedelta(minutes=20)
    assert "Connection refused" not in row.last_error


def test_crash_after_the_server_accepted_sends_again_with_the_same_message_id(site, smtp_server):
    port = free_port()
    _, inbox = smtp_server(port)
    config = setup_mail(site, port)
    (row,) = queue_night(config, NIGHT, now=T0)
    identifier = message_id(NIGHT, "group", SENDER)
    # a sender claims the row, the server accepts the message, the process dies
    assert sendlog.claim(row, T0, identifier)
    summary = build_night_summary(config, NIGHT, now=T0)
    outgoing = build_message(
        summary, config.subscribers[0], config.smtp, config.paths.templates_dir
    )
    send_message(outgoing.message, outgoing.recipients, config.smtp)
    assert SentSummary.get_by_id(row.id).status == "sending"
    # another sender does not take a fresh claim (it may still be running) ...
    assert send_due(config, now=T0 + dt.timedelta(minutes=5)) == []
    # ... but takes it over after the lease: at least once, under the same Message-ID
    (outcome,) = send_due(config, now=T0 + sendlog.SENDING_LEASE)
    assert outcome.status == "sent"
    first, second = (parse(m["data"]) for m in inbox.messages)
    assert first["Message-ID"] == second["Message-ID"] == identifier


def test_one_claim_wins(site):
    config = setup_mail(site, free_port())
    (row,) = queue_night(config, NIGHT, now=T0)
    copy = SentSummary.get_by_id(row.id)
    assert sendlog.claim(row, T0, "<a@b>") is True
    assert sendlog.claim(copy, T0, "<a@b>") is False
    assert sendlog.claim(copy, T0, "<a@b>", ignore_schedule=True) is False  # fresh claim
    assert SentSummary.get_by_id(row.id).attempts == 1


def test_alerts_only_and_source_filters(site, smtp_server):
    port = free_port()
    _, inbox = smtp_server(port)
    subscribers = [
        {"name": "quiet", "to": ["q@x.org"], "sources": ["3C 454.3"], "alerts_only": True},
        {"name": "bl lac", "to": ["b@x.org"], "sources": ["BL Lacertae"], "alerts_only": True},
    ]
    config = setup_mail(site, port, subscribers=subscribers)
    outcomes = {o.subscriber: o for o in send_night(config, NIGHT, now=T0)}
    assert outcomes["quiet"].status == "skipped"
    assert outcomes["quiet"].detail == "alerts_only and no alert this night"
    assert outcomes["bl lac"].status == "sent"
    (received,) = inbox.messages
    assert received["to"] == ["b@x.org"]
    message = parse(received["data"])
    assert message["Subject"] == "iopreport night 2024-10-08: 1 source, 2 alerts"
    assert "2251+158" not in message.get_body(("plain",)).get_content()
    assert send_due(config, now=T0 + dt.timedelta(hours=20)) == []  # skipped is final


def test_cli_send_exit_codes(site, smtp_server, iopreport_exe):
    port = free_port()
    setup_mail(site, port)
    command = [iopreport_exe, "--config", str(site / "config.toml"), "summary", "--night"]
    down = run(*command, NIGHT.isoformat(), "--send")
    assert down.returncode == 1, down.stderr
    assert "2024-10-08 group: failed (127.0.0.1:" in down.stdout and "next attempt" in down.stdout
    _, inbox = smtp_server(port)
    up = run(*command, NIGHT.isoformat(), "--send")  # a person asks: tried now, not at 20 min
    assert up.returncode == 0, up.stderr
    assert "2024-10-08 group: sent" in up.stdout
    again = run(*command, NIGHT.isoformat(), "--send")
    assert again.returncode == 0 and "already sent" in again.stdout
    assert len(inbox.messages) == 1
    outcomes = [r.outcome for r in RunLog.select().where(RunLog.command == "summary")]
    assert outcomes == ["failed", "ok", "ok"]


def test_backoff_doubles_up_to_a_cap():
    minutes = [sendlog.backoff(n, 20).total_seconds() / 60 for n in (1, 2, 3, 4)]
    assert minutes == [20, 40, 80, 160]
    assert sendlog.backoff(30, 20) == sendlog.MAX_BACKOFF


class PickyInbox(Inbox):
    """Refuses the recipients listed in ``refused``."""

    def __init__(self, refused):
        super().__init__()
        self.refused = set(refused)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_refused_recipients(site):
    port = free_port()
    inbox = PickyInbox({"c@x.org"})
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = setup_mail(site, port)
        (outcome,) = send_night(config, NIGHT, now=T0)
        assert outcome.status == "sent"  # accepted for a@ and b@: sent, the refusal noted
        assert outcome.detail == "refused c@x.org: 550 5.1.1 no such mailbox here"
        assert inbox.messages[0]["to"] == ["a@x.org", "b@x.org"]
        inbox.refused = {"q@x.org"}
        only = [{"name": "nobody", "to": ["q@x.org"]}]
        config = setup_mail(site, port, subscribers=only)
        (outcome,) = send_night(config, NIGHT, now=T0)
        assert outcome.status == "failed"
        assert "every recipient refused (q@x.org: 550 5.1.1 no such mailbox here)" in outcome.detail
    finally:
        controller.stop()


def test_no_password_over_an_unencrypted_link_to_another_host(site, monkeypatch):
    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.2", port=port, authenticator=authenticator,
                            auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
        config = setup_mail(site, port, host="127.0.0.2", user=LOGIN, password_env=PASSWORD_ENV)
        (outcome,) = send_night(config, NIGHT, now=T0)
        assert outcome.status == "failed"
        assert "refusing to send the password unencrypted" in outcome.detail
        assert inbox.messages == []
    finally:
        controller.stop()


def test_send_due_queues_last_night_after_summary_time(site, smtp_server):
    port = free_port()
    _, inbox = smtp_server(port)
    config = setup_mail(site, port)  # schedule: 08:00 Europe/Madrid (UTC+2 in October)
    assert send_due(config, now=dt.datetime(2024, 10, 9, 5, 59)) == []  # 07:59 in Madrid
    assert SentSummary.select().count() == 0
    (outcome,) = send_due(config, now=dt.datetime(2024, 10, 9, 6, 0))
    assert (outcome.night, outcome.status) == (NIGHT, "sent")
    assert (site / "data" / "summaries" / "2024-10-08.html").exists()
    assert send_due(config, now=dt.datetime(2024, 10, 9, 18, 0)) == []
    # the next morning: the night of the 9th, with nothing observed, is sent too
    (outcome,) = send_due(config, now=dt.datetime(2024, 10, 10, 6, 30))
    assert (outcome.night, outcome.status) == (dt.date(2024, 10, 9), "sent")
    subjects = [parse(m["data"])["Subject"] for m in inbox.messages]
    assert subjects == [
        "iopreport night 2024-10-08: 2 sources, 2 alerts",
        "iopreport night 2024-10-09: 0 sources, 0 alerts",
    ]
    assert send_due(config, now=dt.datetime(2024, 10, 10, 9, 0), queue_last_night=False) == []


def test_send_night_needs_subscribers(site):
    config = setup_mail(site, free_port())
    config = dataclasses.replace(config, subscribers=())
    with pytest.raises(UsageError, match=r"no \[\[subscribers\]\]"):
        send_night(config, NIGHT, now=T0)
    assert send_due(config, now=T0) == []  # nobody to queue for
