#!/usr/bin/env python3
"""tools/upgrade_diff.py [--script] OLD.sql NEW.sql — what an upgrade script must do.

Lists the objects (functions by signature, views, tables, operators,
operator classes, aggregates, triggers, indexes, types) that are new,
changed or gone between two full install scripts, e.g.

    make wallet--1.1.0.sql
    python3 tools/upgrade_diff.py ext/wallet--1.0.0.sql wallet--1.1.0.sql

It compares statement texts without their comments; the upgrade harness
(test/harness/upgrade.sh) is what proves an upgrade script right.

With --script it prints the body of the upgrade script for the functions:
each new or changed function's statement from NEW.sql with its comment
(CREATE OR REPLACE), followed by NEW.sql's REVOKE, GRANT and COMMENT
statements on it; every other new, changed or gone object is named on
stderr, to be written by hand (exit status 1 when there is one).
"""
import os
import re
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


def script(old_path, new_path):
    old = objects(old_path)
    # every statement text of OLD.sql (operators share a key per name)
    old_texts = {' '.join(strip_comments(st).split()) for st in statements(open(old_path).read())}
    stmts = statements(open(new_path).read())
    by_hand = 0
    for i, st in enumerate(stmts):
        k = key(st)
        if not k or ' '.join(strip_comments(st).split()) in old_texts:
            continue
        if k[0] != 'FUNCTION':
            print('by hand: %s %s' % ('new' if k not in old else 'changed', k), file=sys.stderr)
            by_hand += 1
            continue
        print(re.sub(r'^(\s*(?:--[^\n]*\n\s*)*)CREATE FUNCTION', r'\1CREATE OR REPLACE FUNCTION',
                     st.strip('\n'), count=1))
        # what NEW.sql says about the function afterwards (rights, comments)
        target = re.compile(r'\b(?:ON|FUNCTION)\s+' + re.escape(k[1]) + r'\s*\(')
        for after in stmts[i + 1:]:
            body = strip_comments(after)
            if re.match(r'(REVOKE|GRANT|COMMENT)\b', body, re.I) and target.search(body):
                print(body)
        print()
    for k in objects(old_path):
        if k not in objects(new_path):
            print('by hand: gone %s' % (k,), file=sys.stderr)
            by_hand += 1
    return 1 if by_hand else 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == '--script':
        sys.exit(script(sys.argv[2], sys.argv[3]))
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
