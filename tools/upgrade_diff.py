#!/usr/bin/env python3
"""tools/upgrade_diff.py OLD.sql NEW.sql — what an upgrade script must do.

Lists the objects (functions by signature, views, tables, operators,
operator classes, aggregates, triggers, indexes, types) that are new,
changed or gone between two full install scripts, e.g.

    make wallet--1.1.0.sql
    python3 tools/upgrade_diff.py ext/wallet--1.0.0.sql wallet--1.1.0.sql

It compares statement texts without their comments; the upgrade harness
(test/harness/upgrade.sh) is what proves an upgrade script right.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sqlstmts import key, statements, strip_comments  # noqa: E402


def objects(path):
    out = {}
    for st in statements(open(path).read()):
        k = key(st)
        if k:
            out[k] = ' '.join(strip_comments(st).split())
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    old, new = objects(sys.argv[1]), objects(sys.argv[2])
    for k, text in new.items():
        if k not in old:
            print('new     ', k)
        elif old[k] != text:
            print('changed ', k)
    for k in old:
        if k not in new:
            print('gone    ', k)


if __name__ == '__main__':
    main()
