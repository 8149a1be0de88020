"""Read and file messages in an IMAP folder, with imapclient.

One :class:`ImapSource` is one authenticated connection with one selected folder. It
speaks IMAP and nothing else: what to fetch and when to file it is decided by
:mod:`mailbox_processor.poller`. Every public method is one or two IMAP commands and
returns plain Python values (``str`` and ``int``, never imapclient's ``bytes`` keys).

Errors are turned into :class:`~mailbox_processor.errors.SourceError` subclasses whose
message names the server and the fix; the password or token never appears in them.
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import io
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailbox_processor.config import MailboxConfig, resolve_password
from mailbox_processor.errors import SourceError
from mailbox_processor.sources import RawMessage

log = logging.getLogger(__name__)

#: ``(config, ssl_context) -> IMAPClient``; tests inject a wrapper for faults a real
#: server can't produce (a server without MOVE, say).
ClientFactory = Callable[[MailboxConfig, "ssl.SSLContext | None"], Any]

#: Re-issue IDLE well before the 29-minute limit of RFC 2177.
IDLE_RENEW_SECONDS = 25 * 60


class ImapConnectionError(SourceError):
    """The server could not be reached, or the connection dropped (worth retrying)."""


class ImapAuthError(SourceError):
    """The server refused the login (not worth retrying with the same secret)."""


class ImapTLSError(SourceError):
    """The TLS handshake failed: untrusted certificate, wrong host name, no STARTTLS."""


@dataclass(frozen=True)
class FolderStatus:
    """What SELECT said about the folder (RFC 3501 section 6.3.1)."""

    uidvalidity: int
    uidnext: int | None
    exists: int


#: The exceptions that mean "the connection is gone" (imaplib's abort covers BYE/EOF).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    imaplib.IMAP4.abort,
    ConnectionError,
    socket.timeout,
    TimeoutError,
    OSError,
)


def make_ssl_context(cfg: MailboxConfig) -> ssl.SSLContext | None:
    """Return the TLS context for ``cfg``: verifying, unless ``insecure`` is set.

    A CA file (``cafile``) replaces the system trust store, e.g. for a private CA.
    Plain connections (``tls = plain``) get ``None``.
    """
    if cfg.tls == "plain":
        return None
    if cfg.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    cafile = str(Path(cfg.cafile).expanduser()) if cfg.cafile else None
    return ssl.create_default_context(cafile=cafile)


def default_client_factory(cfg: MailboxConfig, ctx: ssl.SSLContext | None) -> IMAPClient:
    """Open the TCP (and, for implicit TLS, the TLS) connection."""
    return IMAPClient(
        cfg.host,
        port=cfg.effective_port,
        ssl=cfg.tls == "implicit",
        ssl_context=ctx,
        timeout=cfg.timeout,
    )


class ImapSource:
    """One connection to one IMAP folder.

    Use as a context manager::

        with ImapSource(cfg) as src:
            status = src.select()
            for uid_batch in chunks(src.search_uids(after=0), 200):
                raws = src.fetch(uid_batch, status.uidvalidity)
    """

    def __init__(
        self,
        cfg: MailboxConfig,
        *,
        client_factory: ClientFactory | None = None,
        secret: Callable[[MailboxConfig], str] = resolve_password,
    ) -> None:
        self.cfg = cfg
        self._factory = client_factory or default_client_factory
        self._secret = secret
        self.client: Any = None
        self._idling = False
        self._created: set[str] = set()

    # -- connection ------------------------------------------------------------------

    def __enter__(self) -> ImapSource:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect, secure the connection as configured, and log in."""
        cfg = self.cfg
        where = f"{cfg.host}:{cfg.effective_port}"
        secret = self._secret(cfg)  # ConfigError before any network traffic
        ctx = make_ssl_context(cfg)
        try:
            client = self._factory(cfg, ctx)
        except ssl.SSLCertVerificationError as exc:
            raise self._tls_error(exc) from None
        except ssl.SSLError as exc:
            raise ImapTLSError(f"TLS handshake with {where} failed ({exc.reason}): "
                               "check --tls and --port") from None
        except (socket.gaierror, ConnectionError, OSError) as exc:
            raise ImapConnectionError(
                f"cannot connect to IMAP server {where} ({_reason(exc)}): "
                "check --host/--port and that the server is up"
            ) from None
        self.client = client
        _quiet_imaplib(client)
        try:
            if cfg.tls == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise ImapTLSError(
                        f"{where} does not offer STARTTLS: use --tls implicit (port 993), "
                        "or --tls plain if you really mean plaintext"
                    )
                client.starttls(ctx)
            if cfg.auth == "xoauth2":
                client.oauth2_login(cfg.user, secret)
            else:
                client.login(cfg.user, secret)
        except LoginError as exc:
            self.close()
            hint = (
                "check the token from --oauth2-token-command"
                if cfg.auth == "xoauth2"
                else "check --user and the password source"
            )
            raise ImapAuthError(
                f"IMAP login failed for {cfg.user} at {where} ({_server_text(exc, secret)}): "
                f"{hint}"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            self.close()
            raise self._tls_error(exc) from None
        except ImapTLSError:
            self.close()
            raise
        except CONNECTION_ERRORS as exc:
            self.close()
            raise ImapConnectionError(
                f"connection to {where} dropped during login ({_reason(exc)})"
            ) from None
        finally:
            del secret
        log.debug("logged in to %s as %s", where, cfg.user)
        self._enable_vanished()

    def _enable_vanished(self) -> None:
        """ENABLE QRESYNC (RFC 7162) when messages are to be MOVEd and the server can.

        With it the server reports the messages a MOVE took away as one ``VANISHED``
        UID set instead of one ``* n EXPUNGE`` line each, which imaplib reads one at a
        time: about 5 us of this process's CPU per message moved. Not for the other
        post-actions: QRESYNC implies CONDSTORE, under which a STORE answers with a
        ``FETCH (MODSEQ ...)`` line per message even when ``.SILENT``. Must come
        before SELECT (ENABLE is only valid in the authenticated state).
        """
        if self.cfg.post_action.kind != "move" or not all(
            self.has_capability(c) for c in ("ENABLE", "MOVE", "QRESYNC")
        ):
            return
        try:
            self._guard(lambda c: c.enable("QRESYNC"), "ENABLE QRESYNC")
        except ImapConnectionError:
            self.close()
            raise
        except SourceError as exc:  # an optimisation only: carry on without it
            log.debug("%s", exc)

    def _tls_error(self, exc: ssl.SSLCertVerificationError) -> ImapTLSError:
        where = f"{self.cfg.host}:{self.cfg.effective_port}"
        return ImapTLSError(
            f"certificate of {where} not trusted ({exc.verify_message}): "
            "pass the server's CA with --cafile, or --insecure to skip verification"
        )

    def close(self) -> None:
        """Log out (best effort) and drop the connection."""
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if self._idling:
                self._idling = False
                client.idle_done()
            client.logout()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            with contextlib.suppress(Exception):
                client.shutdown()

    def _require(self) -> Any:
        if self.client is None:
            raise ImapConnectionError(f"not connected to {self.cfg.host}")
        return self.client

    def has_capability(self, name: str) -> bool:
        """True when the server advertises ``name`` (``MOVE``, ``IDLE``, ``UIDPLUS``)."""
        return bool(self._guard(lambda c: c.has_capability(name)))

    def _guard(self, fn: Callable[[Any], Any], what: str = "") -> Any:
        """Run one client call, turning connection and protocol failures into ours."""
        client = self._require()
        try:
            result = fn(client)
            self._drain(client)
            return result
        except CONNECTION_ERRORS as exc:
            raise ImapConnectionError(
                f"connection to {self.cfg.host}:{self.cfg.effective_port} lost"
                f"{' during ' + what if what else ''} ({_reason(exc)})"
            ) from None
        except IMAPClientError as exc:
            raise SourceError(
                f"IMAP {what or 'command'} failed on {self.cfg.url}: {_reason(exc)}"
            ) from None

    @staticmethod
    def _drain(client: Any) -> None:
        """Drop unsolicited responses imaplib keeps forever (one EXPUNGE per message a
        MOVE removes): over a 100k-message backlog they add megabytes."""
        untagged = getattr(getattr(client, "_imap", None), "untagged_responses", None)
        if isinstance(untagged, dict):
            for key in ("EXPUNGE", "VANISHED", "RECENT", "FETCH"):
                untagged.pop(key, None)

    # -- folders ---------------------------------------------------------------------

    def select(self, folder: str | None = None) -> FolderStatus:
        """SELECT the folder (read-write) and return its UIDVALIDITY and counts."""
        name = folder or self.cfg.folder
        try:
            info = self._guard(lambda c: c.select_folder(name), f"SELECT {name}")
        except ImapConnectionError:
            raise
        except SourceError as exc:
            raise SourceError(f"{exc}: check --folder (folder names are case-sensitive, "
                              "sub-folders use the server's separator)") from None
        return FolderStatus(
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
            exists=int(info.get(b"EXISTS", 0)),
        )

    def ensure_folder(self, name: str) -> None:
        """Create ``name`` unless it exists (once per connection)."""
        if name in self._created:
            return
        if not self._guard(lambda c: c.folder_exists(name), f"LIST {name}"):
            log.info("creating folder %s on %s", name, self.cfg.identity)
            self._guard(lambda c: c.create_folder(name), f"CREATE {name}")
        self._created.add(name)

    # -- reading ---------------------------------------------------------------------

    def search_uids(self, criteria: Sequence[Any]) -> list[int]:
        """UID SEARCH with ``criteria`` (imapclient list form); returns sorted UIDs."""
        uids = self._guard(lambda c: c.search(list(criteria)), "SEARCH")
        return sorted(int(u) for u in uids)

    #: UIDs asked for per SEARCH: parsing one response for a huge backlog costs tens of
    #: MB; windows keep the peak flat.
    SEARCH_WINDOW = 10_000

    def uids_after(self, last_uid: int, uidnext: int | None = None) -> list[int]:
        """UIDs greater than ``last_uid``, ascending.

        With ``uidnext`` (from SELECT) the range is searched in windows of
        :attr:`SEARCH_WINDOW` UIDs. ``UID n:*`` always matches the highest message
        even when it is lower than n, so the open-ended search is filtered.
        """
        if uidnext is None or uidnext - last_uid <= self.SEARCH_WINDOW:
            return [u for u in self.search_uids(["UID", f"{last_uid + 1}:*"]) if u > last_uid]
        out: list[int] = []
        start = last_uid + 1
        while start < uidnext:
            end = min(start + self.SEARCH_WINDOW - 1, uidnext - 1)
            out.extend(u for u in self.search_uids(["UID", f"{start}:{end}"])
                       if start <= u <= end)
            start = end + 1
        # Messages that arrived after SELECT (UIDs at or above uidnext).
        out.extend(u for u in self.search_uids(["UID", f"{uidnext}:*"]) if u >= uidnext)
        return out

    def fetch(self, uids: Sequence[int], uidvalidity: int) -> list[RawMessage]:
        """UID FETCH BODY.PEEK[] for ``uids`` (the \\Seen flag is left alone).

        A UID that vanished meanwhile (expunged by another client) is simply absent.
        """
        if not uids:
            return []
        data = self._guard(lambda c: _fetch_bodies(c, list(uids)), "FETCH")
        out = []
        url, folder = self.cfg.url, self.cfg.folder  # properties: once, not per message
        for uid in uids:
            item = data.get(uid)
            if item is None:
                continue
            raw = item.get(b"BODY[]")
            out.append(
                RawMessage(
                    source=f"{url};UID={uid}",
                    raw=bytes(raw) if raw is not None else b"",
                    folder=folder,
                    uid=uid,
                    uidvalidity=uidvalidity,
                    error=None if raw is not None else f"UID {uid}: server returned no body",
                )
            )
        return out

    # -- writing (only ever after the database commit) --------------------------------

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Move ``uids`` to ``folder`` (created if missing).

        MOVE (RFC 6851) when advertised, else COPY + STORE \\Deleted + UID EXPUNGE
        (RFC 4315), or a plain EXPUNGE when the server lacks UIDPLUS. The UIDs go as
        compact sets (:func:`uid_sets`): one command per set, however many UIDs.
        """
        if not uids:
            return
        self.ensure_folder(folder)
        use_move = self.has_capability("MOVE")
        for uid_set in uid_sets(uids):
            if use_move:
                self._on_set("move", uid_set, folder, what=f"MOVE to {folder}")
            else:
                # Set by set, so that a kill leaves at most one set copied but not
                # yet flagged \\Deleted (that is, in both folders).
                self._on_set("copy", uid_set, folder, what=f"COPY to {folder}")
                self._delete_set(uid_set)

    def mark_seen(self, uids: Sequence[int]) -> None:
        """Set \\Seen on ``uids``."""
        for uid_set in uid_sets(uids):
            self._on_set("add_flags", uid_set, [b"\\Seen"], silent=True, what="STORE")

    def delete(self, uids: Sequence[int]) -> None:
        """Set \\Deleted on ``uids`` and expunge exactly those (UID EXPUNGE)."""
        for uid_set in uid_sets(uids):
            self._delete_set(uid_set)

    def expunge(self, uids: Iterable[int]) -> None:
        """Expunge ``uids`` (which must carry \\Deleted): UID EXPUNGE where supported."""
        for uid_set in uid_sets(uids):
            self._expunge_set(uid_set)

    def _delete_set(self, uid_set: str) -> None:
        self._on_set("add_flags", uid_set, [b"\\Deleted"], silent=True, what="STORE")
        self._expunge_set(uid_set)

    def _expunge_set(self, uid_set: str) -> None:
        if self.has_capability("UIDPLUS"):
            self._on_set("uid_expunge", uid_set, what="UID EXPUNGE")
        else:
            self._guard(lambda c: c.expunge(), "EXPUNGE")

    def _on_set(self, method: str, uid_set: str, *args: Any, what: str, **kw: Any) -> None:
        """``client.<method>(uid_set, *args, **kw)``, guarded."""
        self._guard(lambda c: getattr(c, method)(uid_set, *args, **kw), what)

    # -- waiting ---------------------------------------------------------------------

    def wait_for_changes(self, timeout: float, stop: Callable[[], bool]) -> bool:
        """IDLE (RFC 2177) for up to ``timeout`` seconds; True when the folder changed.

        Returns early (False) when ``stop()`` turns true; checks it every second.
        Raises :class:`ImapConnectionError` when the server hangs up (BYE, EOF).
        """
        client = self._require()
        deadline = time.monotonic() + min(timeout, IDLE_RENEW_SECONDS)
        changed = False
        self._guard(lambda c: c.idle(), "IDLE")
        self._idling = True
        try:
            while not stop() and not changed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                responses = self._guard(functools.partial(_idle_check, timeout=min(1.0, left)),
                                        "IDLE")
                for resp in responses:
                    if len(resp) >= 2 and resp[0] == b"BYE":
                        raise ImapConnectionError(
                            f"{self.cfg.host} closed the connection (BYE)"
                        )
                    if len(resp) >= 2 and resp[1] in (b"EXISTS", b"RECENT"):
                        changed = True
        finally:
            if self._idling and self.client is client:
                self._idling = False
                self._guard(lambda c: c.idle_done(), "IDLE DONE")
        return changed


#: The longest UID set :func:`uid_sets` puts in one command. RFC 7162 (section 4) asks
#: clients to keep command lines to about 8192 octets; Dovecot refuses lines over 64 KB
#: ("Too long argument"). Consecutive UIDs collapse into ``a:b``, so a set this long
#: is rare: about 1,000 isolated UIDs.
MAX_UID_SET = 7_000


def uid_sets(uids: Iterable[int], limit: int = MAX_UID_SET) -> list[str]:
    """``uids`` as IMAP sequence sets (``1:500,502,504:510``) of at most ``limit`` characters.

    Runs of consecutive UIDs become ``first:last``; duplicates and order don't matter
    (the same set either way). A set holds exactly the given UIDs: a range only ever
    spans UIDs that are all in ``uids``.
    """
    ordered = sorted(set(uids))
    out: list[str] = []
    parts: list[str] = []
    size = -1  # the length of ",".join(parts)
    i, n = 0, len(ordered)
    while i < n:
        j = i
        while j + 1 < n and ordered[j + 1] == ordered[j] + 1:
            j += 1
        part = str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}"
        if parts and size + 1 + len(part) > limit:
            out.append(",".join(parts))
            parts, size = [], -1
        parts.append(part)
        size += 1 + len(part)
        i = j + 1
    if parts:
        out.append(",".join(parts))
    return out


#: One FETCH response as Dovecot, Cyrus and most servers answer ``BODY.PEEK[]``:
#: ``* <seq> FETCH (UID <uid> BODY[] {<size>}`` (imaplib has taken ``* `` and ``FETCH``
#: off, the literal follows), then a trailer of just ``)``.
_FETCH_HEAD = re.compile(rb"(\d+) \(UID (\d+) BODY\[\] \{(\d+)\}\Z")


def _parse_bodies(data: list[Any]) -> dict[int, dict[bytes, Any]] | None:
    """imapclient's ``parse_fetch_response`` for the common shape of the answer to
    ``UID FETCH ... (BODY.PEEK[])``, or ``None`` for anything else.

    imapclient lexes each response head byte by byte in Python (about 9 us per message
    of a poll); this reads the usual shape with one regex and leaves every other one
    (unsolicited FLAGS, other item order, NIL bodies, repeated UIDs) to imapclient.
    """
    out: dict[int, dict[bytes, Any]] = {}
    if len(data) % 2:
        return None
    for i in range(0, len(data), 2):
        item, trailer = data[i], data[i + 1]
        if not isinstance(item, tuple) or len(item) != 2 or trailer != b")":
            return None
        head, body = item
        m = _FETCH_HEAD.match(head) if isinstance(head, bytes) else None
        if m is None or not isinstance(body, bytes) or int(m[3]) != len(body):
            return None
        uid = int(m[2])
        if uid in out:
            return None
        out[uid] = {b"SEQ": int(m[1]), b"BODY[]": body}
    return out


#: The first line of a FETCH response that brings a literal, e.g. a message body:
#: ``* <seq> FETCH (<items> {<size>}`` and CRLF.
_FETCH_LITERAL = re.compile(rb"\* (\d+) FETCH (\([^\r\n]*\{(\d+)\})\r\n")


def _read_fetch_literals(imap: Any, tag: bytes) -> None:
    """Read the responses to the command ``tag`` into imaplib's state up to its
    completion, exactly as imaplib's own loop (``_get_response``) would, reading here
    the FETCH responses whose first line ends in a literal (every message body).

    imaplib takes each line through half a dozen calls, a ``repr()`` for its command
    log and attribute look-ups slowed by its ``__getattr__``: with this, ``fetch``
    costs this process 92 thousand instructions per message of the benchmark instead
    of 138 (valgrind), ~6 us less. Any other response (the tagged completion, EXISTS,
    a FETCH of flags), and a first line not yet whole in the read buffer, goes to
    imaplib's ``_get_response``. Does nothing unless ``imap`` reads a buffered
    ``file`` the way :class:`imaplib.IMAP4` does.
    """
    file = getattr(imap, "file", None)
    cls = type(imap)
    if (
        not isinstance(imap, imaplib.IMAP4)
        or not isinstance(file, io.BufferedReader)
        or cls.read is not imaplib.IMAP4.read
        or cls.readline is not imaplib.IMAP4.readline
    ):
        return
    untagged = imap.untagged_responses
    literal = imap.Literal  # set per connection (ASCII or UTF-8 mode)
    while imap.tagged_commands.get(tag) is None:
        if "BYE" in untagged:
            imap._check_bye()  # raises, as imaplib's loop does before the next response
        m = _FETCH_LITERAL.match(file.peek(1))
        if m is None:
            imap._get_response()
            continue
        file.read(m.end())
        # What imaplib stores: ("<seq> <rest of the line>", the literal), then the line
        # after the literal, which may end in another literal.
        fetches = untagged.setdefault("FETCH", [])
        dat = m[1] + b" " + m[2]
        size = int(m[3])
        while True:
            fetches.append((dat, file.read(size)))
            dat = imap._get_line()
            more = literal.match(dat)
            if more is None:
                break
            size = int(more["size"])
        fetches.append(dat)


def _fetch_bodies(client: Any, uids: list[int]) -> Any:
    """``client.fetch(uids, ["BODY.PEEK[]"])``, with :func:`_parse_bodies` in front of
    imapclient's parser; the command and its checks are those of imapclient's ``fetch``.
    Clients that are not a UID-mode :class:`IMAPClient` (test doubles) use ``fetch``."""
    imap = getattr(client, "_imap", None)
    if not isinstance(client, IMAPClient) or not client.use_uid or imap is None:
        return client.fetch(uids, ["BODY.PEEK[]"])
    from imapclient.imapclient import join_message_ids
    from imapclient.response_parser import parse_fetch_response

    tag = imap._command("UID", "FETCH", join_message_ids(uids), "(BODY.PEEK[])")
    _read_fetch_literals(imap, tag)
    typ, data = imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, data)
    typ, data = imap._untagged_response(typ, data, "FETCH")
    fast = _parse_bodies(data) if isinstance(data, list) else None
    if fast is not None:
        return fast
    return parse_fetch_response(data, client.normalise_times, client.use_uid)


def _quiet_imaplib(client: Any) -> None:
    """Stop imaplib's protocol tracing unless someone listens to it.

    imapclient sets ``imaplib.IMAP4.debug = 5`` and routes the trace to the
    ``imapclient.imaplib`` logger; at that level imaplib formats every response line,
    and ``repr()`` of every FETCHed message (``_append_untagged``), before the logger
    drops the text: about 15 us of CPU per message of a poll, for nothing, since
    nothing shows that logger's DEBUG records unless it is configured to.
    """
    imap = getattr(client, "_imap", None)
    if imap is None or logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        return
    with contextlib.suppress(AttributeError, TypeError):
        imap.debug = 0


def _idle_check(client: Any, timeout: float) -> Any:
    return client.idle_check(timeout=timeout)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _server_text(exc: BaseException, secret: str) -> str:
    text = _reason(exc)
    return text.replace(secret, "***") if secret else text
