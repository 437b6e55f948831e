"""Tests for kong_admin_server.py's hostile quirks (/__test/quirks), a verbatim Retry-After, and the
stats observations max_writes_in_flight and retry_gaps. Run: python3 -m pytest -q Fixtures/kong

Nothing here asserts on wall time, except that a recorded gap is at least a sleep this client did."""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest

try:
    # The same server and per-test client (reset, quirks included) as the fixture's own tests.
    from test_kong_admin_server import api, server  # noqa: F401
except ImportError:         # --import-mode=importlib leaves this directory off sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_kong_admin_server import api, server  # noqa: F401

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
QUIRKS_OFF = {"endless_offset": None, "endless_fresh_data": False, "ignore_tags": False, "gzip_bomb_bytes": None}


def make_consumers(api, *names, tags=None):
    out = []
    for name in names:
        r = api.post("/consumers", {"username": name, "tags": tags})
        assert r.status == 201, r.raw
        out.append(r.json)
    return out


def set_quirks(api, **quirks):
    r = api.post("/__test/quirks", quirks)
    assert r.status == 200, r.raw
    return r.json


def offset_id(token):
    """A Kong offset is unpadded base64 of a JSON array holding the last id."""
    return json.loads(base64.b64decode(token + "=" * (-len(token) % 4)))[0]


def ids(body):
    return [c["id"] for c in body["data"]]


# --------------------------------------------------------------------------------------------
# /__test/quirks itself
# --------------------------------------------------------------------------------------------


def test_quirks_get_post_delete_reset(api):
    assert api.get("/__test/quirks").json == QUIRKS_OFF
    assert set_quirks(api, ignore_tags=True) == {**QUIRKS_OFF, "ignore_tags": True}
    # POST replaces the whole set: absent keys are off again
    assert set_quirks(api, endless_offset="fresh", endless_fresh_data=True) == {
        **QUIRKS_OFF, "endless_offset": "fresh", "endless_fresh_data": True}
    assert api.get("/__test/quirks").json["ignore_tags"] is False
    assert api.delete("/__test/quirks").status == 204
    assert api.get("/__test/quirks").json == QUIRKS_OFF
    set_quirks(api, gzip_bomb_bytes=1000, ignore_tags=True)
    assert api.post("/__test/reset").status == 200
    assert api.get("/__test/quirks").json == QUIRKS_OFF
    assert api.get("/__test/stats").json["total"] == 0          # /__test/ is never counted


@pytest.mark.parametrize("body", [
    {"nope": True}, {"endless_offset": "forever"}, {"ignore_tags": "yes"}, {"endless_fresh_data": 1},
    {"gzip_bomb_bytes": 22}, {"gzip_bomb_bytes": True}, {"gzip_bomb_bytes": 1.5}, {"gzip_bomb_bytes": 1 << 40}, [],
])
def test_quirks_validation(api, body):
    set_quirks(api, ignore_tags=True)
    r = api.post("/__test/quirks", body)
    assert r.status == 400 and r.json["message"]
    assert api.get("/__test/quirks").json["ignore_tags"] is True  # a bad body changes nothing


# --------------------------------------------------------------------------------------------
# endless_offset
# --------------------------------------------------------------------------------------------


def test_endless_same_repeats_page_one_and_its_offset(api):
    made = make_consumers(api, "a", "b", "c", tags=["managed"])
    make_consumers(api, "untagged")
    real = api.get("/consumers?tags=managed&size=2").json
    set_quirks(api, endless_offset="same")
    first = api.get("/consumers?tags=managed&size=2")
    assert first.status == 200
    token = first.json["offset"]
    assert token == real["offset"]                       # page 1's real offset
    assert first.json["next"] == f"/consumers?offset={quote(token, safe='')}&tags=managed&size=2"
    assert ids(first.json) == sorted(c["id"] for c in made)[:2]
    for _ in range(10):
        r = api.get(f"/consumers?offset={quote(token, safe='')}&tags=managed&size=2")
        assert r.status == 200
        assert r.json == first.json                      # same data, same offset, same next
    # a listing that fits in one page still gets a (constant) offset
    whole = api.get("/consumers").json
    assert len(whole["data"]) == 4 and whole["offset"] == api.get(whole["next"]).json["offset"]
    assert offset_id(whole["offset"]) == whole["data"][-1]["id"]


def test_endless_same_on_an_empty_store(api):
    set_quirks(api, endless_offset="same")
    a = api.get("/consumers").json
    b = api.get(a["next"]).json
    assert a["data"] == b["data"] == [] and a["offset"] == b["offset"] and UUID_RE.match(offset_id(a["offset"]))


def test_endless_fresh_offsets_never_repeat_and_pages_are_empty(api):
    made = make_consumers(api, "a", "b", "c")
    set_quirks(api, endless_offset="fresh")
    first = api.get("/consumers").json
    assert sorted(ids(first)) == sorted(c["id"] for c in made)       # page 1 is real
    seen = {first["offset"]}
    token = first["offset"]
    for _ in range(50):
        r = api.get(f"/consumers?offset={quote(token, safe='')}")
        assert r.status == 200
        body = r.json
        assert body["data"] == []
        token = body["offset"]
        assert isinstance(token, str) and token not in seen
        assert body["next"] == f"/consumers?offset={quote(token, safe='')}"
        assert UUID_RE.match(offset_id(token))                       # looks like Kong's
        seen.add(token)
    assert len(seen) == 51
    assert api.get("/__test/stats").json["by_route"]["GET /consumers"] == 51


def test_endless_fresh_data_brings_new_unstored_consumers(api):
    real = make_consumers(api, "a", tags=["managed"])
    set_quirks(api, endless_offset="fresh", endless_fresh_data=True)
    first = api.get("/consumers?tags=managed&size=5").json
    assert ids(first) == [real[0]["id"]]
    all_ids, usernames, token = set(), [], first["offset"]
    for _ in range(10):
        body = api.get(f"/consumers?offset={quote(token, safe='')}&tags=managed&size=5").json
        assert len(body["data"]) == 5
        for c in body["data"]:
            assert set(c) == {"id", "created_at", "updated_at", "username", "custom_id", "tags"}
            assert UUID_RE.match(c["id"]) and UUID_RE.match(c["custom_id"])
            assert c["tags"] == ["managed"] and isinstance(c["created_at"], int)
            all_ids.add(c["id"])
            usernames.append(c["username"])
        assert body["next"].endswith("&tags=managed&size=5")
        token = body["offset"]
    assert len(all_ids) == 50 and real[0]["id"] not in all_ids
    assert usernames == [f"endless-{n}" for n in range(1, 51)]
    assert api.get("/consumers/endless-1").status == 404              # never stored
    assert [c["username"] for c in api.get("/__test/state").json["consumers"]] == ["a"]


def test_endless_leaves_other_routes_alone(api):
    make_consumers(api, *[f"u{i}" for i in range(3)])
    c = api.get("/consumers/u0").json
    api.post("/consumers/u0/key-auth", {})
    set_quirks(api, endless_offset="fresh")
    assert api.get("/consumers?custom_id=nope").json == {"data": [], "next": None}
    assert api.get("/consumers/u0/key-auth").json["next"] is None
    assert api.get("/key-auths").json["next"] is None
    assert api.get(f"/consumers/{c['id']}").json == c


# --------------------------------------------------------------------------------------------
# ignore_tags
# --------------------------------------------------------------------------------------------


def test_ignore_tags_lists_untagged_consumers_and_pages(api):
    made = make_consumers(api, "managed", tags=["managed"]) + make_consumers(api, "plain") \
        + make_consumers(api, "other", tags=["other"])
    every = sorted(c["id"] for c in made)
    assert [c["username"] for c in api.get("/consumers?tags=managed").json["data"]] == ["managed"]
    set_quirks(api, ignore_tags=True)
    assert sorted(ids(api.get("/consumers?tags=managed").json)) == every
    # paging by offset (the client keeps sending its tags) walks the unfiltered set
    seen, url = [], "/consumers?tags=managed&size=1"
    while True:
        body = api.get(url).json
        seen.extend(ids(body))
        if body["next"] is None:
            break
        assert "tags=" not in body["next"]          # the proxy dropped it before Kong saw it
        url = f"/consumers?tags=managed&size=1&offset={quote(body['offset'], safe='')}"
    assert seen == every
    assert api.get("/consumers?tags=a,b/c").status == 200                 # not even parsed
    api.delete("/__test/quirks")
    assert [c["username"] for c in api.get("/consumers?tags=managed").json["data"]] == ["managed"]


# --------------------------------------------------------------------------------------------
# gzip_bomb_bytes
# --------------------------------------------------------------------------------------------


def inflate_counting(raw: bytes):
    """Streams the gzip body through zlib (CRC and length checked), never holding the output.
    Returns (bytes out, first 9, last 14, spaces)."""
    d = zlib.decompressobj(31)
    total = spaces = 0
    head, tail = b"", b""
    for i in range(0, len(raw), 4096):
        data = raw[i:i + 4096]
        while data:
            out = d.decompress(data, 1 << 20)
            data = d.unconsumed_tail
            total += len(out)
            spaces += out.count(b" ")
            if len(head) < 9:
                head += out[:9 - len(head)]
            tail = (tail + out[-14:])[-14:]
    out = d.flush()
    total += len(out)
    spaces += out.count(b" ")
    tail = (tail + out)[-14:]
    assert d.eof and d.unused_data == b""
    return total, head, tail, spaces


def test_gzip_bomb_inflates_to_n_bytes(api):
    n = 10_000_000
    c = make_consumers(api, "a")[0]
    assert set_quirks(api, gzip_bomb_bytes=n)["gzip_bomb_bytes"] == n
    r = api.get("/consumers")        # http.client sends Accept-Encoding: identity
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Content-Encoding"] == "gzip"
    assert int(r.headers["Content-Length"]) == len(r.raw) < 20_000
    total, head, tail, spaces = inflate_counting(r.raw)
    assert (total, head, tail) == (n, b'{"data":[', b'],"next":null}')
    assert spaces == n - 23                                     # the rest is JSON whitespace
    # every answer to the collection, whatever the query or Accept-Encoding
    assert api.get("/consumers?tags=x&size=3", headers={"Accept-Encoding": "br"}).raw == r.raw
    assert api.get("/consumers?custom_id=zzz").raw == r.raw
    h = api.request("HEAD", "/consumers")
    assert h.raw == b"" and h.headers["Content-Length"] == str(len(r.raw))
    # not other routes
    one = api.get(f"/consumers/{c['id']}")
    assert one.json == c and "Content-Encoding" not in one.headers
    stats = api.get("/__test/stats").json
    assert stats["by_route"]["GET /consumers"] == 3 and stats["by_status"]["200"] == 5


def test_gzip_bomb_of_4e9_bytes_is_about_4mb(api):
    n = 4_000_000_000
    set_quirks(api, gzip_bomb_bytes=n)
    raw = api.get("/consumers").raw
    assert 3_000_000 < len(raw) < 5_000_000
    assert raw[:3] == b"\x1f\x8b\x08"
    assert struct.unpack("<I", raw[-4:])[0] == n % (1 << 32)      # gzip ISIZE
    d = zlib.decompressobj(31)
    start = d.decompress(raw[:65536], 1 << 20)                   # just the start
    assert start.startswith(b'{"data":[   ') and len(start) == 1 << 20


# --------------------------------------------------------------------------------------------
# Retry-After sent verbatim (fault rules already take any string)
# --------------------------------------------------------------------------------------------


def raw_exchange(port, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


@pytest.mark.parametrize("value", ["nan", "-1", "1e400", "Wed, 21 Oct 2015 07:28:00 GMT", "0x10"])
def test_retry_after_string_is_sent_verbatim(api, server, value):
    r = api.post("/__test/faults", {"rules": [{"status": 429, "retry_after": value, "times": 1}]})
    assert r.status == 200 and r.json["rules"][0]["retry_after"] == value
    data = raw_exchange(server.port, b"GET /status HTTP/1.1\r\nHost: kong\r\nConnection: close\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 ")
    assert f"\r\nRetry-After: {value}\r\n".encode() in head + b"\r\n"
    assert json.loads(body) == {"message": "API rate limit exceeded"}
    assert api.get("/status").status == 200                      # times: 1


# --------------------------------------------------------------------------------------------
# stats: max_writes_in_flight and retry_gaps
# --------------------------------------------------------------------------------------------


def test_max_writes_in_flight_counts_concurrent_writes(api, server):
    make_consumers(api, "u0", "u1", "u2", "u3")
    api.post("/__test/faults", {"rules": [{"method": "PATCH", "path_regex": "^/consumers/", "delay_ms": 800,
                                           "status": None}]})
    api.post("/__test/reset-stats")
    assert "max_writes_in_flight" not in api.get("/__test/stats").json
    clients = [server.client() for _ in range(4)]
    for c in clients:
        c.conn.connect()             # each has its handler thread before anyone sends
    barrier = threading.Barrier(4)
    statuses = [None] * 4

    def patch(i):
        barrier.wait()
        statuses[i] = clients[i].patch(f"/consumers/u{i}", {"tags": ["x"]}).status

    threads = [threading.Thread(target=patch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in clients:
        c.close()
    assert statuses == [200] * 4
    stats = api.get("/__test/stats").json
    assert stats["writes"] == 4 and stats["max_writes_in_flight"] == 4
    assert "max_writes_in_flight" not in api.post("/__test/reset-stats").json
    api.delete("/__test/faults")                                  # /__test/ writes are not Kong writes
    api.get("/consumers")                                         # reads are not writes
    assert "max_writes_in_flight" not in api.get("/__test/stats").json
    api.patch("/consumers/u0", {"tags": ["y"]})
    api.delete("/consumers/nope")                                 # a 404 is still a write
    assert api.get("/__test/stats").json["max_writes_in_flight"] == 1


def test_retry_gaps_record_time_to_the_next_same_request(api):
    api.post("/__test/faults", {"rules": [
        {"method": "GET", "path_regex": "^/consumers$", "status": 429, "retry_after": "1", "times": 2},
        {"method": "PATCH", "status": 429, "times": 1},
        {"method": "GET", "path_regex": "^/status$", "status": 503, "times": 1},
    ]})
    assert api.get("/consumers?size=1").status == 429
    first = {"method": "GET", "path": "/consumers", "retry_after": "1", "gap_ms": None}
    assert api.get("/__test/stats").json["retry_gaps"] == [first]
    assert api.get("/status").status == 503                        # other path, and not a 429
    assert api.post("/consumers", {"username": "a"}).status == 201  # other method
    assert api.get("/consumers/a").status == 200                   # other raw path
    assert api.patch("/consumers/a", {}).status == 429             # no retry_after: null
    assert api.get("/__test/stats").json["retry_gaps"] == [
        first, {"method": "PATCH", "path": "/consumers/a", "retry_after": None, "gap_ms": None}]
    time.sleep(0.25)
    assert api.get("/consumers?size=2").status == 429              # same method and raw path
    gaps = api.get("/__test/stats").json["retry_gaps"]
    assert isinstance(gaps[0]["gap_ms"], int) and gaps[0]["gap_ms"] >= 250
    assert gaps[1]["gap_ms"] is None
    assert gaps[2] == first                                        # the second 429, still open
    time.sleep(0.05)
    assert api.get("/consumers").status == 200
    gaps = api.get("/__test/stats").json["retry_gaps"]
    assert len(gaps) == 3 and gaps[2]["gap_ms"] >= 50
    assert api.get("/__test/stats").json["by_status"]["429"] == 3
    assert "retry_gaps" not in api.post("/__test/reset-stats").json
    assert api.patch("/consumers/a", {}).status == 200
    assert "retry_gaps" not in api.get("/__test/stats").json       # the old entry went with the reset


def test_reset_clears_observations(api):
    api.post("/__test/faults", {"rules": [{"status": 429, "times": 1}]})
    assert api.post("/consumers", {"username": "a"}).status == 429
    stats = api.get("/__test/stats").json
    assert stats["max_writes_in_flight"] == 1 and len(stats["retry_gaps"]) == 1
    api.post("/__test/reset")
    assert api.get("/__test/stats").json == {"total": 0, "writes": 0, "by_route": {}, "by_status": {}}



def test_fault_rule_extra_headers(api):
    r = api.post("/__test/faults", {"rules": [{"method": "GET", "path_regex": "^/$", "status": 302,
                                               "headers": {"Location": "http://127.0.0.1:1/elsewhere"}}]})
    assert r.status == 200, r.raw
    g = api.get("/")
    assert g.status == 302 and g.headers["Location"] == "http://127.0.0.1:1/elsewhere"
    assert api.post("/__test/faults", {"rules": [{"status": 500, "headers": {"X": 1}}]}).status == 400
    api.delete("/__test/faults")
