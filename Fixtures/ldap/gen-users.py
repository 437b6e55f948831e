#!/usr/bin/env python3
"""Print LDIF for N generated inetOrgPerson users under ou=people,dc=example,dc=org.

    gen-users.py --count N [--start 1] [--locked-every K] [--left-every K]
                 [--temp-locked-every K] [--base ou=people,dc=example,dc=org]

User i (i = start .. start+count-1) is uid=user%06d (user000001, ...) with cn, sn,
givenName, mail and an explicit, deterministic entryUUID:

    uuid5(NAMESPACE_URL, "user:" + uid), lowercase

slapadd keeps an entryUUID given in the LDIF (it only generates one when the
entry has none), so tests can predict every user's id.

Every K-th user (i % K == 0):
  --locked-every K       pwdAccountLockedTime: 000001010000Z   administrative lock = disabled
  --left-every K         employeeType: left                    matches disabled_filter
  --temp-locked-every K  pwdAccountLockedTime: 20261130090000Z temporary lockout after
                         failed binds; must NOT count as disabled
pwdAccountLockedTime is single-valued: where --locked-every and
--temp-locked-every both hit, the administrative lock wins.
pwdAccountLockedTime is an operational attribute of the ppolicy module (OpenLDAP
2.5); it needs no extra objectClass, and slapadd accepts it.
Standard library only.
"""
import argparse
import sys
import uuid

ADMIN_LOCK = "000001010000Z"
TEMP_LOCK = "20261130090000Z"


def user_uuid(uid: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "user:" + uid)).lower()


def every(i: int, k: int) -> bool:
    return k > 0 and i % k == 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=int, default=1)
    p.add_argument("--locked-every", type=int, default=0, metavar="K")
    p.add_argument("--left-every", type=int, default=0, metavar="K")
    p.add_argument("--temp-locked-every", type=int, default=0, metavar="K")
    p.add_argument("--base", default="ou=people,dc=example,dc=org")
    a = p.parse_args(argv)
    if a.count < 0 or a.start < 0:
        p.error("--count and --start must be >= 0")
    for name in ("locked_every", "left_every", "temp_locked_every"):
        if getattr(a, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")

    out = sys.stdout
    buf = []
    for i in range(a.start, a.start + a.count):
        uid = "user%06d" % i
        num = "%06d" % i
        lines = [
            f"dn: uid={uid},{a.base}",
            "objectClass: top",
            "objectClass: person",
            "objectClass: organizationalPerson",
            "objectClass: inetOrgPerson",
            f"uid: {uid}",
            f"cn: User {num}",
            f"givenName: User",
            f"sn: {num}",
            f"mail: {uid}@example.org",
            f"entryUUID: {user_uuid(uid)}",
        ]
        if every(i, a.left_every):
            lines.append("employeeType: left")
        if every(i, a.locked_every):
            lines.append(f"pwdAccountLockedTime: {ADMIN_LOCK}")
        elif every(i, a.temp_locked_every):
            lines.append(f"pwdAccountLockedTime: {TEMP_LOCK}")
        buf.append("\n".join(lines) + "\n\n")
        if len(buf) >= 1000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))
    out.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
