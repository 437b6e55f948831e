#!/usr/bin/env python3
"""Writes a valid idp-sync journal of N records (hash chain and head file), for benchmarks.

Records look like real ones: runs of 1,000 actions (intent + outcome pairs) over consumers
user000001…, each run between run-started and run-finished. Canonical JSON is Python's
json.dumps(sort_keys=True, separators=(',', ':'), ensure_ascii=False), which equals idp-sync's
canonical form for these values (ASCII keys, no control characters).
"""
import argparse
import hashlib
import json
import uuid


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--consumers", type=int, default=50_000)
    parser.add_argument("path")
    args = parser.parse_args()
    prev = "0" * 64
    seq = 0
    t0 = 1_796_000_000
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    with open(args.path, "w", encoding="utf-8") as out:
        def emit(record):
            nonlocal prev, seq
            seq += 1
            record["seq"] = seq
            record["prev"] = prev
            record["time"] = "2026-11-%02dT%02d:%02d:%02dZ" % (1 + seq // 86400 % 28, seq // 3600 % 24, seq // 60 % 60, seq % 60)
            digest = hashlib.sha256(dumps(record).encode()).hexdigest()
            record["hash"] = digest
            out.write(dumps(record))
            out.write("\n")
            prev = digest

        run_no = 0
        i = 0
        while seq < args.records:
            run_no += 1
            run = "r-202611%02dT000000Z-%04x" % (1 + run_no % 28, run_no % 65536)
            emit({"event": "run-started", "run": run, "version": "1.0.0", "host": "bench", "uid": 998,
                  "config_sha256": "0" * 64, "dry_run": False})
            for _ in range(500):
                if seq + 3 > args.records:
                    break
                i += 1
                n = i % args.consumers + 1
                name = "user%06d" % n
                cid = str(uuid.uuid5(uuid.NAMESPACE_URL, "user:" + name))
                fields = {"run": run, "gateway": "prod", "action": "flag", "situation": "missing",
                          "consumer": {"id": str(uuid.UUID(int=n)), "username": name, "custom_id": cid},
                          "user": None, "keys": [{"id": str(uuid.UUID(int=n + 10**9)), "fingerprint": "sha256:%016x" % n}],
                          "before": ["idp-managed"],
                          "after": ["idp-managed", "idp-sync:orphaned", "idp-sync:missing-since:%d" % t0,
                                    "idp-sync:reason:missing"],
                          "reason": "no user with id %s in ou=people,dc=example,dc=org" % cid}
                intent = dict(fields, event="intent")
                emit(intent)
                emit(dict(fields, event="outcome", intent=seq, outcome="applied"))
            if seq < args.records:
                emit({"event": "run-finished", "run": run, "outcome": "ok", "exit_code": 0, "users": 100000,
                      "counts": {"flag": 500}, "plan_hash": "0" * 64, "stopped": False})
    with open(args.path + ".head", "w") as head:
        head.write("%d:%s\n" % (seq, prev))


if __name__ == "__main__":
    main()
