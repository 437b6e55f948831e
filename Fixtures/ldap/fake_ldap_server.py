#!/usr/bin/env python3
"""A fake LDAP server whose paged results never end, to test that a directory read fails closed.

Real slapd covers most misbehaviour (see slapd-fixture, tcp_fault_proxy.py); it cannot send a
paged-results cookie (RFC 2696, OID 1.2.840.113556.1.4.319) that never becomes empty. This can.

  fake_ldap_server.py --port-file PATH --mode MODE [--bind-dn DN --password PW] [--max-pages N]

Modes (what every page of a paged search returns; the filter, base, scope and attribute list of
the search are ignored):
  endless-cookie       2 SearchResultEntry (dn uid=fakeN,ou=people,dc=example,dc=org, attributes
                       uid=fakeN and entryUUID=<fresh uuid4>, N counting up across the pages of a
                       connection), then SearchResultDone success with a paged-results response
                       control whose cookie is never empty (b"page-<n>")
  endless-empty-pages  no entries, SearchResultDone success with a never-empty cookie
  no-page-control      2 entries, then SearchResultDone success WITHOUT any response control
  time-limit-page2     like endless-cookie, but page 2 ends with result 3 (timeLimitExceeded)
  same-cookie          page 1 as endless-cookie; every later page has no entries and the same
                       never-empty cookie b"same" (page 1's cookie too)

Sync modes answer a search with the RFC 4533 Sync Request control (1.3.6.1.4.1.4203.1.9.1.1);
their other searches are answered as in no-page-control:
  sync-refresh-required  without a cookie: 2 entries (uid=fake1, fake2; entryUUID uuid5(URL,
                       "fake:" + uid)) with Sync State add, a Sync Info refreshDelete (cookie
                       b"fake-cookie", refreshDone TRUE), then the connection is closed 0.3 s later;
                       with a cookie: SearchResultDone 4096 (e-syncRefreshRequired)
  sync-hostile         per sync search on the server, in turn: an entry whose Sync State control
                       has a 15-byte entryUUID; a Sync Info whose value is not valid BER; an entry
                       with no control at all; the connection stays open

A paged search with requested size 0 (RFC 2696: the client abandons the paged search) gets
SearchResultDone success with an empty cookie and no entries, in every mode. A search without the
paged-results control gets the entries of one page and SearchResultDone without a control.

Bind: simple bind only. With --bind-dn/--password, that DN (compared case-insensitively) with that
password succeeds and any other name/password gets invalidCredentials (49); without them every
simple bind succeeds. Anonymous bind (empty name and password) always succeeds; a name with an
empty password (unauthenticated bind) gets unwillingToPerform (53); SASL gets
authMethodNotSupported (7). Searches are answered whether or not the connection is bound.
UnbindRequest closes the connection, AbandonRequest is ignored, an ExtendedRequest (e.g. StartTLS)
gets protocolError (2); any other operation or undecodable input closes the connection.

After --max-pages (default 100000) pages on one connection the connection is closed, as a safety
net. Binds 127.0.0.1 port 0, writes the port to --port-file (temp file + rename) once listening,
serves until SIGTERM/SIGINT, then exits 0. One thread per connection. Standard library only; the
BER (RFC 4511 section 5.1 subset) is encoded and decoded by hand.
"""
import argparse
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
PEOPLE_BASE = "ou=people,dc=example,dc=org"
MODES = ("endless-cookie", "endless-empty-pages", "no-page-control", "time-limit-page2", "same-cookie",
         "sync-refresh-required", "sync-hostile")
SYNC_REQUEST_OID = "1.3.6.1.4.1.4203.1.9.1.1"
SYNC_STATE_OID = "1.3.6.1.4.1.4203.1.9.1.2"
SYNC_INFO_OID = "1.3.6.1.4.1.4203.1.9.1.4"
SYNC_ADD = 1
SYNC_REFRESH_REQUIRED = 4096
TIME_LIMIT_EXCEEDED = 3
MAX_MESSAGE = 16 * 1024 * 1024

# Universal tags
BOOLEAN, INTEGER, OCTET_STRING, ENUMERATED, SEQUENCE, SET = 0x01, 0x02, 0x04, 0x0A, 0x30, 0x31
# LDAP protocolOp tags ([APPLICATION n], constructed unless noted)
BIND_REQUEST, BIND_RESPONSE = 0x60, 0x61
UNBIND_REQUEST = 0x42  # primitive, NULL
SEARCH_REQUEST, SEARCH_RESULT_ENTRY, SEARCH_RESULT_DONE = 0x63, 0x64, 0x65
ABANDON_REQUEST = 0x50  # primitive, MessageID
EXTENDED_REQUEST, EXTENDED_RESPONSE = 0x77, 0x78
INTERMEDIATE_RESPONSE = 0x79
SYNC_REFRESH_DELETE = 0xA1  # [1] in syncInfoValue
CONTROLS = 0xA0  # [0] constructed, in LDAPMessage
AUTH_SIMPLE = 0x80  # [0] primitive, in BindRequest
AUTH_SASL = 0xA3  # [3] constructed

SUCCESS, PROTOCOL_ERROR, AUTH_METHOD_NOT_SUPPORTED = 0, 2, 7
INVALID_CREDENTIALS, UNWILLING_TO_PERFORM = 49, 53


class BERError(Exception):
    pass


# ---------------------------------------------------------------- BER encoding

def encode_length(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag, value):
    return bytes([tag]) + encode_length(len(value)) + value


def encode_int_body(n):
    # Minimal two's complement.
    length = max(1, (n + (n < 0)).bit_length() // 8 + 1)
    return n.to_bytes(length, "big", signed=True)


def ber_int(n, tag=INTEGER):
    return tlv(tag, encode_int_body(n))


def ber_enum(n):
    return ber_int(n, ENUMERATED)


def ber_bool(b):
    return tlv(BOOLEAN, b"\xff" if b else b"\x00")


def ber_str(s, tag=OCTET_STRING):
    return tlv(tag, s.encode("utf-8") if isinstance(s, str) else bytes(s))


def ber_seq(*items, tag=SEQUENCE):
    return tlv(tag, b"".join(items))


# ---------------------------------------------------------------- BER decoding

def decode_tlv(data, offset=0):
    """One TLV at data[offset:]: (tag, value, offset after it). Tag: the identifier octets as an
    int (single-octet tags are their byte value). Definite lengths only (RFC 4511 5.1)."""
    if offset >= len(data):
        raise BERError("truncated: no tag")
    tag = data[offset]
    offset += 1
    if tag & 0x1F == 0x1F:  # high tag number form
        while True:
            if offset >= len(data):
                raise BERError("truncated tag")
            b = data[offset]
            tag = (tag << 8) | b
            offset += 1
            if not b & 0x80:
                break
    if offset >= len(data):
        raise BERError("truncated: no length")
    first = data[offset]
    offset += 1
    if first == 0x80:
        raise BERError("indefinite length not allowed")
    if first & 0x80:
        n = first & 0x7F
        if n > 8 or offset + n > len(data):
            raise BERError("bad long-form length")
        length = int.from_bytes(data[offset:offset + n], "big")
        offset += n
    else:
        length = first
    if offset + length > len(data):
        raise BERError("truncated value")
    return tag, data[offset:offset + length], offset + length


def decode_all(data):
    """All TLVs in data (the contents of a constructed value): [(tag, value), ...]."""
    items, offset = [], 0
    while offset < len(data):
        tag, value, offset = decode_tlv(data, offset)
        items.append((tag, value))
    return items


def decode_int(value):
    if not value:
        raise BERError("empty integer")
    return int.from_bytes(value, "big", signed=True)


def read_message(sock):
    """One complete BER element from the socket (bytes, tag and length included), or None at EOF."""

    def recv_exact(n):
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                if buf:
                    raise BERError("connection closed inside a message")
                return None
            buf += chunk
        return bytes(buf)

    head = recv_exact(2)
    if head is None:
        return None
    if head[0] != SEQUENCE:
        raise BERError(f"LDAPMessage must be a SEQUENCE, got tag 0x{head[0]:02x}")
    first = head[1]
    if first == 0x80:
        raise BERError("indefinite length not allowed")
    if first & 0x80:
        n = first & 0x7F
        if n == 0 or n > 4:
            raise BERError("bad long-form length")
        lenbytes = recv_exact(n)
        if lenbytes is None:
            raise BERError("connection closed inside a message")
        length = int.from_bytes(lenbytes, "big")
        head += lenbytes
    else:
        length = first
    if length > MAX_MESSAGE:
        raise BERError(f"message too large ({length} bytes)")
    body = recv_exact(length) if length else b""
    if body is None:
        raise BERError("connection closed inside a message")
    return head + body


# ---------------------------------------------------------------- LDAP messages

def parse_message(data):
    """LDAPMessage -> (message_id, op_tag, op_value, controls). controls: [(oid, critical, value)]."""
    tag, content, end = decode_tlv(data)
    if tag != SEQUENCE or end != len(data):
        raise BERError("not an LDAPMessage")
    items = decode_all(content)
    if len(items) < 2 or items[0][0] != INTEGER:
        raise BERError("LDAPMessage needs messageID and protocolOp")
    message_id = decode_int(items[0][1])
    op_tag, op_value = items[1]
    controls = []
    for ctag, cvalue in items[2:]:
        if ctag == CONTROLS:
            controls = parse_controls(cvalue)
    return message_id, op_tag, op_value, controls


def parse_controls(data):
    controls = []
    for tag, value in decode_all(data):
        if tag != SEQUENCE:
            raise BERError("Control must be a SEQUENCE")
        fields = decode_all(value)
        if not fields or fields[0][0] != OCTET_STRING:
            raise BERError("Control needs a controlType")
        oid = fields[0][1].decode("ascii", "replace")
        critical, cvalue = False, None
        for ftag, fvalue in fields[1:]:
            if ftag == BOOLEAN:
                critical = fvalue != b"\x00"
            elif ftag == OCTET_STRING:
                cvalue = fvalue
        controls.append((oid, critical, cvalue))
    return controls


def parse_paged_control(controls):
    """(size, cookie) of the paged-results request control, or None when absent."""
    for oid, _critical, value in controls:
        if oid == PAGED_RESULTS_OID:
            if value is None:
                raise BERError("paged-results control without a value")
            tag, content, _ = decode_tlv(value)
            fields = decode_all(content)
            if tag != SEQUENCE or len(fields) < 2 or fields[0][0] != INTEGER \
                    or fields[1][0] != OCTET_STRING:
                raise BERError("bad paged-results control value")
            return decode_int(fields[0][1]), fields[1][1]
    return None


def parse_sync_control(controls):
    """The cookie of the Sync Request control: None without the control, b"" without a cookie."""
    for oid, _critical, value in controls:
        if oid == SYNC_REQUEST_OID:
            if value is None:
                raise BERError("sync request control without a value")
            tag, content, _ = decode_tlv(value)
            fields = decode_all(content)
            if tag != SEQUENCE or not fields or fields[0][0] != ENUMERATED:
                raise BERError("bad sync request control value")
            for ftag, fvalue in fields[1:]:
                if ftag == OCTET_STRING:
                    return fvalue
            return b""
    return None


def parse_bind(op_value):
    """BindRequest -> (version, name, auth_tag, credentials)."""
    fields = decode_all(op_value)
    if len(fields) != 3 or fields[0][0] != INTEGER or fields[1][0] != OCTET_STRING:
        raise BERError("bad BindRequest")
    return (decode_int(fields[0][1]), fields[1][1].decode("utf-8", "replace"),
            fields[2][0], fields[2][1])


def message(message_id, op, controls=b""):
    return ber_seq(ber_int(message_id), op, tlv(CONTROLS, controls) if controls else b"")


def ldap_result(tag, code, diagnostic="", matched_dn=""):
    return ber_seq(ber_enum(code), ber_str(matched_dn), ber_str(diagnostic), tag=tag)


def search_entry(dn, attributes):
    attrs = b"".join(
        ber_seq(ber_str(name), ber_seq(*(ber_str(v) for v in values), tag=SET))
        for name, values in attributes)
    return ber_seq(ber_str(dn), tlv(SEQUENCE, attrs), tag=SEARCH_RESULT_ENTRY)


def paged_control(cookie, size=0):
    value = ber_seq(ber_int(size), ber_str(cookie))
    return ber_seq(ber_str(PAGED_RESULTS_OID), ber_str(value))


def sync_state_control(state, entry_uuid, cookie=None):
    value = ber_seq(ber_enum(state), ber_str(entry_uuid), *([ber_str(cookie)] if cookie is not None else []))
    return ber_seq(ber_str(SYNC_STATE_OID), ber_str(value))


def intermediate(oid, value):
    return ber_seq(ber_str(oid, 0x80), ber_str(value, 0x81), tag=INTERMEDIATE_RESPONSE)


def fake_uuid(uid):
    return uuid.uuid5(uuid.NAMESPACE_URL, "fake:" + uid)


# ---------------------------------------------------------------- server

class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pages = 0
        self.next_uid = 1
        self.peer = "%s:%d" % self.request.getpeername()[:2]

    def log(self, text):
        print(f"fake_ldap_server[{self.peer}]: {text}", file=sys.stderr, flush=True)

    def send(self, *messages):
        self.request.sendall(b"".join(messages))

    def handle(self):
        try:
            while True:
                data = read_message(self.request)
                if data is None:
                    return
                message_id, op_tag, op_value, controls = parse_message(data)
                if op_tag == BIND_REQUEST:
                    self.bind(message_id, op_value)
                elif op_tag == SEARCH_REQUEST:
                    if not self.search(message_id, controls):
                        return
                elif op_tag == UNBIND_REQUEST:
                    return
                elif op_tag == ABANDON_REQUEST:
                    continue
                elif op_tag == EXTENDED_REQUEST:
                    self.send(message(message_id, ldap_result(
                        EXTENDED_RESPONSE, PROTOCOL_ERROR, "extended operations not supported")))
                else:
                    self.log(f"unsupported operation tag 0x{op_tag:02x}; closing")
                    return
        except BERError as e:
            self.log(f"protocol error: {e}; closing")
        except OSError:
            pass
        finally:
            if self.pages:
                self.log(f"closed after {self.pages} pages")

    def bind(self, message_id, op_value):
        version, name, auth_tag, credentials = parse_bind(op_value)
        server = self.server
        if auth_tag != AUTH_SIMPLE:
            code, diag = AUTH_METHOD_NOT_SUPPORTED, "only simple bind is supported"
        elif version != 3:
            code, diag = PROTOCOL_ERROR, "only LDAPv3 is supported"
        elif not name and not credentials:
            code, diag = SUCCESS, ""
        elif not credentials:
            code, diag = UNWILLING_TO_PERFORM, "unauthenticated bind (DN with no password) disallowed"
        elif server.bind_dn is None or (
                name.lower() == server.bind_dn.lower()
                and credentials == server.password.encode("utf-8")):
            code, diag = SUCCESS, ""
        else:
            code, diag = INVALID_CREDENTIALS, ""
        self.send(message(message_id, ldap_result(BIND_RESPONSE, code, diag)))

    def entries(self, message_id, count):
        out = []
        for _ in range(count):
            uid = f"fake{self.next_uid}"
            self.next_uid += 1
            out.append(message(message_id, search_entry(
                f"uid={uid},{PEOPLE_BASE}",
                [("entryUUID", [str(uuid.uuid4())]), ("uid", [uid])])))
        return out

    def search(self, message_id, controls):
        """Answer one search (one page). False when the connection is to be closed."""
        mode = self.server.mode
        if mode.startswith("sync-"):
            cookie = parse_sync_control(controls)
            if cookie is not None:
                return self.sync(message_id, cookie)
            mode = "no-page-control"
        paged = parse_paged_control(controls)
        if paged is not None and paged[0] == 0:
            # RFC 2696: size 0 abandons the paged search; answer with an empty cookie.
            self.send(message(message_id, ldap_result(SEARCH_RESULT_DONE, SUCCESS),
                              paged_control(b"")))
            return True
        if self.pages >= self.server.max_pages:
            self.log(f"{self.pages} pages served on this connection (--max-pages); closing")
            return False
        self.pages += 1
        empty = mode == "endless-empty-pages" or (mode == "same-cookie" and self.pages > 1)
        out = self.entries(message_id, 0 if empty else 2)
        done = ldap_result(SEARCH_RESULT_DONE, SUCCESS)
        if mode == "time-limit-page2" and self.pages == 2:
            # Result 3 (timeLimitExceeded) in the middle of paging, as a busy server answers.
            done = ldap_result(SEARCH_RESULT_DONE, TIME_LIMIT_EXCEEDED, "time limit exceeded")
        if paged is None or mode == "no-page-control":
            out.append(message(message_id, done))
        else:
            cookie = b"same" if mode == "same-cookie" else b"page-%d" % self.pages
            out.append(message(message_id, done, paged_control(cookie)))
        self.send(*out)
        return True

    def sync(self, message_id, cookie):
        """Answer a sync search (RFC 4533). False when the connection is to be closed."""
        if self.server.mode == "sync-refresh-required":
            if cookie:
                self.send(message(message_id, ldap_result(
                    SEARCH_RESULT_DONE, SYNC_REFRESH_REQUIRED, "sync refresh required")))
                return True
            out = []
            for uid in ("fake1", "fake2"):
                out.append(message(message_id, search_entry(
                    f"uid={uid},{PEOPLE_BASE}", [("entryUUID", [str(fake_uuid(uid))]), ("uid", [uid])]),
                    sync_state_control(SYNC_ADD, fake_uuid(uid).bytes)))
            out.append(message(message_id, intermediate(
                SYNC_INFO_OID, ber_seq(ber_str(b"fake-cookie"), tag=SYNC_REFRESH_DELETE))))
            self.send(*out)
            time.sleep(0.3)
            return False
        with self.server.lock:
            turn = self.server.sync_searches
            self.server.sync_searches += 1
        entry = search_entry(f"uid=fake1,{PEOPLE_BASE}", [("uid", ["fake1"])])
        if turn % 3 == 0:
            self.send(message(message_id, entry, sync_state_control(SYNC_ADD, fake_uuid("fake1").bytes[:15])))
        elif turn % 3 == 1:
            self.send(message(message_id, intermediate(SYNC_INFO_OID, b"\xa3\x05\x31\x03\x04\x01")))
        else:
            self.send(message(message_id, entry))
        return True


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--bind-dn")
    parser.add_argument("--password")
    parser.add_argument("--max-pages", type=int, default=100000)
    args = parser.parse_args(argv)
    if (args.bind_dn is None) != (args.password is None):
        parser.error("give --bind-dn and --password together")
    if args.max_pages < 1:
        parser.error("--max-pages must be >= 1")

    server = Server(("127.0.0.1", 0), Handler)
    server.mode, server.bind_dn, server.password = args.mode, args.bind_dn, args.password
    server.max_pages = args.max_pages
    server.lock, server.sync_searches = threading.Lock(), 0

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    tmp = f"{args.port_file}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    print(f"fake_ldap_server: listening on 127.0.0.1:{server.server_address[1]} "
          f"mode={args.mode}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
