#!/usr/bin/env python3
"""Prints LDIF for N Active Directory users under CN=Users: aduser0001… with userPrincipalName,
every K-th one disabled (userAccountControl 546 = NORMAL_ACCOUNT | PASSWD_NOTREQD | ACCOUNTDISABLE,
the others 544, enabled without a password)."""
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--count", type=int, required=True)
parser.add_argument("--disabled-every", type=int, default=0)
parser.add_argument("--base", default="CN=Users,DC=example,DC=test")
parser.add_argument("--realm", default="example.test")
args = parser.parse_args()
for i in range(1, args.count + 1):
    name = "aduser%04d" % i
    disabled = args.disabled_every and i % args.disabled_every == 0
    print("dn: CN=%s,%s" % (name, args.base))
    print("objectClass: user")
    print("sAMAccountName: %s" % name)
    print("userPrincipalName: %s@%s" % (name, args.realm))
    print("userAccountControl: %d" % (546 if disabled else 544))
    print()
