#!/usr/bin/env bash
# test/harness/upgrade.sh — SPEC "Operations": upgrade scripts are tested:
# installing an old version and updating gives the same objects as a fresh
# install of the new one.  Owned by test/harness/.
#
# Versions: the full install scripts wallet--X.sql in the server's
# extension directory ($(SHAREDIR)/extension); the newest is META.json's
# version (which must be installed and be the control file's default).
# For every older version X, in a fresh database: CREATE EXTENSION wallet
# VERSION 'X', post some history and seal it, ALTER EXTENSION wallet UPDATE
# TO each step of pg_extension_update_paths() up to the newest, then
#   - the catalog description (functions with arguments, result,
#     volatility, security, config, body; aggregates; types; operators;
#     operator classes and families; casts; tables, columns, defaults,
#     constraints, indexes, triggers, views, sequences; comments; ACLs and
#     initial privileges; extension membership and configuration) equals
#     that of a fresh install of the newest version (diffed, shown on failure);
#   - the history posted before the update still verifies: wallet.verify()
#     and wallet.audit_verify(head kept before the update).
# Objects of the extension outside schema wallet (operators, aggregates
# and functions it puts in pg_catalog) are described too.
# Always (also with a single version): the fresh description is stable
# across DROP/CREATE EXTENSION, and ALTER EXTENSION wallet UPDATE on the
# newest is a no-op.  A future ext/wallet--1.0.0--1.1.0.sql (installed with
# the frozen ext/wallet--1.0.0.sql) is exercised without editing this file.
#
# Prints TAP lines (`ok - ...` / `not ok - ...`) and `# ` comments; exit 1
# if any failed.
#
# Env: PGHOST PGPORT PGUSER (scripts/test.sh sets them), WALLET_REPO (the
#      repository, for META.json; default: two levels up from here),
#      WALLET_UPGRADE_DB (database name prefix, default wallet_upg),
#      WALLET_UPGRADE_KEEP=1 keeps the databases and the descriptions.
set -u
unset PGDATABASE PGOPTIONS PGSERVICE

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=${WALLET_REPO:-$(cd "$here/../.." && pwd -P)}
P=${WALLET_UPGRADE_DB:-wallet_upg}
work=$(mktemp -d)
FAILED=0
DBS=()

cleanup() {
	if [ "${WALLET_UPGRADE_KEEP:-0}" != 1 ]; then
		for d in "${DBS[@]}"; do dropdb --if-exists --force "$d" >/dev/null 2>&1 || true; done
		rm -rf "$work"
	else
		echo "# kept: databases ${DBS[*]}, descriptions in $work"
	fi
}
trap cleanup EXIT

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILED=$((FAILED + 1)); }
comment() { sed 's/^/# /'; }
v() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1; }
fresh_db() {
	DBS+=("$1")
	dropdb --if-exists --force "$1" >/dev/null 2>&1
	createdb "$1"
}

# ---------------------------------------------------------------- catalog description

cat >"$work/describe.sql" <<'SQL'
SET search_path = pg_catalog;
SET client_min_messages = warning;
CREATE TEMP VIEW ext_obj AS
    SELECT d.classid, d.objid, d.objsubid
      FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
     WHERE e.extname = 'wallet' AND d.deptype = 'e';
CREATE TEMP VIEW wrel AS
    SELECT c.* FROM pg_class c WHERE c.relnamespace = 'wallet'::regnamespace;
SELECT line FROM (
    -- the extension itself
    SELECT format('extension version=%s relocatable=%s schema=%s owner_super=%s', e.extversion, e.extrelocatable,
                  e.extnamespace::regnamespace, r.rolsuper) AS line
      FROM pg_extension e JOIN pg_roles r ON r.oid = e.extowner WHERE e.extname = 'wallet'
    UNION ALL
    SELECT format('extension config %s condition=%L', c.cfg, c.cond)
      FROM pg_extension e,
           LATERAL unnest(e.extconfig::regclass[]::text[], coalesce(e.extcondition, array_fill(''::text, ARRAY[cardinality(e.extconfig)]))) AS c(cfg, cond)
     WHERE e.extname = 'wallet'
    UNION ALL
    SELECT 'member ' || pg_describe_object(o.classid, o.objid, o.objsubid) FROM ext_obj o
    UNION ALL
    SELECT format('schema %s acl=%s', n.nspname, n.nspacl) FROM pg_namespace n WHERE n.nspname = 'wallet'
    UNION ALL
    -- routines
    SELECT format('function %s kind=%s returns %s%s lang=%s volatility=%s strict=%s secdef=%s leakproof=%s parallel=%s cost=%s rows=%s config=%s acl=%s args=%s body=%s bin=%s',
                  p.oid::regprocedure, p.prokind, CASE WHEN p.proretset THEN 'setof ' ELSE '' END,
                  pg_get_function_result(p.oid), l.lanname, p.provolatile, p.proisstrict, p.prosecdef, p.proleakproof,
                  p.proparallel, p.procost, p.prorows, p.proconfig, p.proacl, pg_get_function_arguments(p.oid),
                  md5(p.prosrc), p.probin)
      FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
     WHERE p.pronamespace = 'wallet'::regnamespace
        OR p.oid IN (SELECT o.objid FROM ext_obj o WHERE o.classid = 'pg_proc'::regclass)
    UNION ALL
    SELECT format('aggregate %s kind=%s trans=%s final=%s combine=%s serial=%s deserial=%s mtrans=%s stype=%s init=%L sortop=%s finalmodify=%s',
                  a.aggfnoid::regprocedure, a.aggkind, a.aggtransfn::regprocedure, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                  a.aggdeserialfn, a.aggmtransfn, a.aggtranstype::regtype, a.agginitval, a.aggsortop::regoperator, a.aggfinalmodify)
      FROM pg_aggregate a JOIN pg_proc p ON p.oid = a.aggfnoid
     WHERE p.pronamespace = 'wallet'::regnamespace
        OR p.oid IN (SELECT o.objid FROM ext_obj o WHERE o.classid = 'pg_proc'::regclass)
    UNION ALL
    -- types
    SELECT format('type %s kind=%s len=%s byval=%s align=%s storage=%s category=%s preferred=%s in=%s out=%s recv=%s send=%s typmodin=%s analyze=%s subscript=%s elem=%s notnull=%s basetype=%s default=%L collation=%s acl=%s',
                  t.oid::regtype, t.typtype, t.typlen, t.typbyval, t.typalign, t.typstorage, t.typcategory, t.typispreferred,
                  t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typanalyze, t.typsubscript,
                  t.typelem::regtype, t.typnotnull, t.typbasetype::regtype, t.typdefault, t.typcollation, t.typacl)
      FROM pg_type t
     WHERE t.typnamespace = 'wallet'::regnamespace
       AND NOT (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c'))
       AND NOT (t.typcategory = 'A' AND EXISTS (SELECT 1 FROM pg_type e JOIN pg_class c ON c.oid = e.typrelid
                                                WHERE e.oid = t.typelem AND c.relkind <> 'c'))
    UNION ALL
    SELECT format('composite %s attr %s %s %s', t.oid::regtype, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod))
      FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid AND c.relkind = 'c' JOIN pg_attribute a ON a.attrelid = c.oid
     WHERE t.typnamespace = 'wallet'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('enum %s %s %s', e.enumtypid::regtype, e.enumsortorder, e.enumlabel)
      FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typnamespace = 'wallet'::regnamespace
    UNION ALL
    SELECT format('domain constraint %s %s %s', t.oid::regtype, c.conname, pg_get_constraintdef(c.oid))
      FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid WHERE t.typnamespace = 'wallet'::regnamespace
    UNION ALL
    -- operators, classes, families, casts
    SELECT format('operator %s result=%s code=%s com=%s neg=%s rest=%s join=%s merges=%s hashes=%s',
                  o.oid::regoperator, o.oprresult::regtype, o.oprcode, o.oprcom::regoperator, o.oprnegate::regoperator,
                  o.oprrest, o.oprjoin, o.oprcanmerge, o.oprcanhash)
      FROM pg_operator o
     WHERE o.oprnamespace = 'wallet'::regnamespace
        OR o.oid IN (SELECT x.objid FROM ext_obj x WHERE x.classid = 'pg_operator'::regclass)
    UNION ALL
    SELECT format('opclass %s using %s for %s default=%s family=%s keytype=%s', c.opcname, am.amname, c.opcintype::regtype,
                  c.opcdefault, f.opfname, c.opckeytype::regtype)
      FROM pg_opclass c JOIN pg_am am ON am.oid = c.opcmethod JOIN pg_opfamily f ON f.oid = c.opcfamily
     WHERE c.opcnamespace = 'wallet'::regnamespace
    UNION ALL
    SELECT format('opfamily %s using %s op %s(%s,%s) strategy=%s purpose=%s sortfamily=%s', f.opfname, am.amname,
                  o.amopopr::regoperator, o.amoplefttype::regtype, o.amoprighttype::regtype, o.amopstrategy, o.amoppurpose, o.amopsortfamily)
      FROM pg_amop o JOIN pg_opfamily f ON f.oid = o.amopfamily JOIN pg_am am ON am.oid = f.opfmethod
     WHERE f.opfnamespace = 'wallet'::regnamespace
    UNION ALL
    SELECT format('opfamily %s using %s proc %s(%s,%s) = %s', f.opfname, am.amname, p.amprocnum,
                  p.amproclefttype::regtype, p.amprocrighttype::regtype, p.amproc::regprocedure)
      FROM pg_amproc p JOIN pg_opfamily f ON f.oid = p.amprocfamily JOIN pg_am am ON am.oid = f.opfmethod
     WHERE f.opfnamespace = 'wallet'::regnamespace
    UNION ALL
    SELECT format('cast %s -> %s func=%s context=%s method=%s', c.castsource::regtype, c.casttarget::regtype,
                  c.castfunc::regprocedure, c.castcontext, c.castmethod)
      FROM pg_cast c
     WHERE c.oid IN (SELECT objid FROM ext_obj WHERE classid = 'pg_cast'::regclass)
        OR c.castsource IN (SELECT oid FROM pg_type WHERE typnamespace = 'wallet'::regnamespace)
        OR c.casttarget IN (SELECT oid FROM pg_type WHERE typnamespace = 'wallet'::regnamespace)
    UNION ALL
    -- relations
    SELECT format('relation %s kind=%s persistence=%s options=%s acl=%s rls=%s forcerls=%s replident=%s',
                  c.oid::regclass, c.relkind, c.relpersistence, c.reloptions, c.relacl, c.relrowsecurity,
                  c.relforcerowsecurity, c.relreplident)
      FROM wrel c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND c.relkind <> 'c'
    UNION ALL
    -- columns, with their position among the live columns (a column an
    -- update appends where a fresh install puts it elsewhere is a difference)
    SELECT format('column %s %s. %s %s notnull=%s default=%s identity=%L generated=%L collation=%s acl=%s',
                  c.oid::regclass, row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                  a.attidentity, a.attgenerated, a.attcollation, a.attacl)
      FROM wrel c JOIN pg_attribute a ON a.attrelid = c.oid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s %s %s deferrable=%s deferred=%s validated=%s', c.conrelid::regclass, c.conname,
                  pg_get_constraintdef(c.oid), c.condeferrable, c.condeferred, c.convalidated)
      FROM pg_constraint c WHERE c.conrelid IN (SELECT oid FROM wrel)
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid))
      FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM wrel)
    UNION ALL
    SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM wrel) AND NOT t.tgisinternal
    UNION ALL
    SELECT format('view %s %s', c.oid::regclass, regexp_replace(pg_get_viewdef(c.oid, true), '\s+', ' ', 'g'))
      FROM wrel c WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('rule %s %s', r.ev_class::regclass, regexp_replace(pg_get_ruledef(r.oid), '\s+', ' ', 'g'))
      FROM pg_rewrite r WHERE r.ev_class IN (SELECT oid FROM wrel) AND r.rulename <> '_RETURN'
    UNION ALL
    SELECT format('policy %s %s %s', p.polrelid::regclass, p.polname, pg_get_expr(p.polqual, p.polrelid))
      FROM pg_policy p WHERE p.polrelid IN (SELECT oid FROM wrel)
    UNION ALL
    SELECT format('sequence %s type=%s start=%s inc=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
                  s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                  (SELECT d.refobjid::regclass || '.' || a.attname FROM pg_depend d
                     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')
                      AND d.refclassid = 'pg_class'::regclass))
      FROM pg_sequence s WHERE s.seqrelid IN (SELECT oid FROM wrel)
    UNION ALL
    -- comments and initial privileges of every member
    SELECT format('comment %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), md5(d.description))
      FROM pg_description d
     WHERE (d.classoid, d.objoid) IN (SELECT classid, objid FROM ext_obj)
        OR d.objoid IN (SELECT oid FROM wrel) OR d.objoid = 'wallet'::regnamespace
    UNION ALL
    SELECT format('init_privs %s %s %s', pg_describe_object(i.classoid, i.objoid, i.objsubid), i.privtype, i.initprivs)
      FROM pg_init_privs i
     WHERE (i.classoid, i.objoid) IN (SELECT classid, objid FROM ext_obj)
        OR i.objoid IN (SELECT oid FROM wrel) OR i.objoid = 'wallet'::regnamespace
    UNION ALL
    -- anything else living in the schema that the lines above do not list
    SELECT format('object %s', pg_describe_object('pg_conversion'::regclass, c.oid, 0))
      FROM pg_conversion c WHERE c.connamespace = 'wallet'::regnamespace
    UNION ALL
    SELECT format('object %s', pg_describe_object('pg_ts_config'::regclass, c.oid, 0))
      FROM pg_ts_config c WHERE c.cfgnamespace = 'wallet'::regnamespace
    UNION ALL
    SELECT format('object %s', pg_describe_object('pg_collation'::regclass, c.oid, 0))
      FROM pg_collation c WHERE c.collnamespace = 'wallet'::regnamespace
    UNION ALL
    SELECT format('event trigger %s %s %s', e.evtname, e.evtevent, e.evtfoid::regprocedure)
      FROM pg_event_trigger e WHERE e.oid IN (SELECT objid FROM ext_obj WHERE classid = 'pg_event_trigger'::regclass)
) s
ORDER BY line COLLATE "C";
SQL

describe() {  # describe DB OUTFILE
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -f "$work/describe.sql" >"$2" 2>"$2.err"
	local rc=$?
	if [ "$rc" != 0 ] || [ -s "$2.err" ]; then
		cat "$2.err" | comment
		return 1
	fi
	[ -s "$2" ]
}

# same DESCRIPTION FILE1 FILE2: ok/not ok, the diff as comments
same() {
	if diff -u "$2" "$3" >"$work/diff" 2>&1; then
		ok "$1 ($(wc -l <"$2") catalog lines)"
	else
		not_ok "$1"
		head -n 80 "$work/diff" | comment
	fi
}

# Posts some history with the contract v1 API and seals it; prints the head.
history() {
	psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" 2>&1 <<'SQL'
SET client_min_messages = warning;
SELECT wallet.add_currency('UPGC', 0, 'upgrade coin') AS x \gset
SELECT wallet.open_account('u-alice', 'USD') AS alice \gset
SELECT wallet.open_account('u-bank', 'USD', 'system', true) AS bank \gset
SELECT wallet.open_account('u-coin', 'UPGC') AS coin \gset
SELECT wallet.open_account('u-mint', 'UPGC', 'system', true) AS mint \gset
SELECT wallet.transfer(:bank, :alice, '10.00 USD', 'u-1') AS t1 \gset
SELECT wallet.transfer(:mint, :coin, '7 UPGC', 'u-2', 'transfer', '{"m": 1}') AS t2 \gset
SELECT wallet.reverse(:t1, 'u-3') AS t3 \gset
SELECT wallet.hold(:mint, :coin, '1 UPGC', 'u-4') AS h1 \gset
SELECT wallet.freeze_account(:alice) AS x \gset
CREATE TABLE public.u_audited (id int, total wallet.amount);
SELECT wallet.audit_table('public.u_audited') AS x \gset
INSERT INTO public.u_audited VALUES (1, '1.00 USD');
SELECT wallet.digest();
SQL
}

# ---------------------------------------------------------------- versions

NEWEST=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$REPO/META.json" | head -n 1)
SHAREDIR=$(v postgres "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
EXTDIR="$SHAREDIR/extension"
if [ -z "$NEWEST" ] || [ ! -d "$EXTDIR" ]; then
	not_ok "find the newest version (META.json: '$NEWEST') and the extension directory ('$EXTDIR')"
	exit 1
fi
mapfile -t VERSIONS < <(cd "$EXTDIR" && for f in wallet--*.sql; do
	n=${f#wallet--}; n=${n%.sql}
	case $n in *--*) ;; *) [ -f "$f" ] && echo "$n" ;; esac
done | sort -V)
echo "install scripts in $EXTDIR: ${VERSIONS[*]:-none}; newest (META.json) $NEWEST" | comment
if printf '%s\n' "${VERSIONS[@]}" | grep -qxF "$NEWEST"; then
	ok "the newest version $NEWEST has an installed install script"
else
	not_ok "the newest version $NEWEST has an installed install script (make install?)"
	exit 1
fi
DEFAULT=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$EXTDIR/wallet.control")
if [ "$DEFAULT" = "$NEWEST" ]; then ok "installed wallet.control default_version is $NEWEST"; else not_ok "installed wallet.control default_version ($DEFAULT) is META.json's $NEWEST"; fi
LATEST_SCRIPT=$(printf '%s\n' "${VERSIONS[@]}" | sort -V | tail -n 1)
if [ "$LATEST_SCRIPT" = "$NEWEST" ]; then ok "no install script is newer than $NEWEST"; else not_ok "no install script is newer than $NEWEST (found $LATEST_SCRIPT)"; fi
OLDER=()
for x in "${VERSIONS[@]}"; do
	[ "$x" != "$NEWEST" ] && [ "$(printf '%s\n%s\n' "$x" "$NEWEST" | sort -V | head -n 1)" = "$x" ] && OLDER+=("$x")
done

# ---------------------------------------------------------------- the fresh install

FRESH=${P}_fresh
fresh_db "$FRESH" || { not_ok "createdb $FRESH"; exit 1; }
if v "$FRESH" "CREATE EXTENSION wallet" >"$work/create.out" &&
   [ "$(v "$FRESH" "SELECT extversion FROM pg_extension WHERE extname = 'wallet'")" = "$NEWEST" ]; then
	ok "CREATE EXTENSION wallet installs $NEWEST"
else
	not_ok "CREATE EXTENSION wallet installs $NEWEST"
	comment <"$work/create.out"
	exit 1
fi
if describe "$FRESH" "$work/fresh.desc"; then
	ok "catalog description of a fresh $NEWEST install ($(wc -l <"$work/fresh.desc") lines)"
else
	not_ok "catalog description of a fresh $NEWEST install"
	exit 1
fi

out=$(v "$FRESH" "DROP EXTENSION wallet CASCADE" 2>&1; v "$FRESH" "CREATE EXTENSION wallet" 2>&1)
if [ -n "$out" ]; then echo "$out" | comment; fi
describe "$FRESH" "$work/fresh2.desc" && same "the description is stable across DROP/CREATE EXTENSION" "$work/fresh.desc" "$work/fresh2.desc"

out=$(psql -X -v ON_ERROR_STOP=1 -d "$FRESH" -c "ALTER EXTENSION wallet UPDATE" 2>&1)
rc=$?
if [ "$rc" = 0 ] && grep -q 'already installed' <<<"$out"; then
	ok "ALTER EXTENSION wallet UPDATE on $NEWEST is a no-op (already installed)"
else
	not_ok "ALTER EXTENSION wallet UPDATE on $NEWEST is a no-op (exit $rc)"
	echo "$out" | comment
fi
describe "$FRESH" "$work/fresh3.desc" && same "the description is unchanged by the no-op update" "$work/fresh.desc" "$work/fresh3.desc"

# A no-op update with history in place keeps it verifiable.
head=$(history "$FRESH" | tail -n 1)
if [[ $head =~ ^[0-9a-f]{64}$ ]]; then
	v "$FRESH" "ALTER EXTENSION wallet UPDATE" >/dev/null
	bad=$(v "$FRESH" "SELECT count(*) FROM wallet.verify() WHERE NOT ok")
	bad2=$(v "$FRESH" "SELECT count(*) FROM wallet.audit_verify('$head') WHERE NOT ok")
	if [ "$bad" = 0 ] && [ "$bad2" = 0 ]; then ok "history posted on $NEWEST verifies after the no-op update"; else not_ok "history posted on $NEWEST verifies after the no-op update ($bad / $bad2 failing checks)"; fi
else
	not_ok "post history on $NEWEST"
	echo "$head" | comment
fi

# ---------------------------------------------------------------- every older version

if [ "${#OLDER[@]}" = 0 ]; then
	ok "upgrade path: only version $NEWEST (nothing to upgrade)"
fi
for x in "${OLDER[@]}"; do
	db="${P}_from_$(echo "$x" | tr -c 'A-Za-z0-9\n' '_')"
	fresh_db "$db" || { not_ok "createdb $db"; continue; }
	if ! out=$(v "$db" "CREATE EXTENSION wallet VERSION '$x'"); then
		not_ok "CREATE EXTENSION wallet VERSION '$x'"
		echo "$out" | comment
		continue
	fi
	ok "CREATE EXTENSION wallet VERSION '$x'"
	head=$(history "$db" | tail -n 1)
	if [[ $head =~ ^[0-9a-f]{64}$ ]]; then ok "history posted and sealed on $x"; else not_ok "history posted and sealed on $x"; echo "$head" | comment; head=""; fi
	path=$(v "$db" "SELECT path FROM pg_extension_update_paths('wallet') WHERE source = '$x' AND target = '$NEWEST'")
	if [ -z "$path" ]; then
		not_ok "an update path exists from $x to $NEWEST"
		continue
	fi
	ok "update path $path"
	IFS=' ' read -r -a steps <<<"$(echo "$path" | sed 's/--/ /g')"
	failed_step=""
	for step in "${steps[@]:1}"; do
		if ! out=$(v "$db" "ALTER EXTENSION wallet UPDATE TO '$step'"); then
			failed_step=$step
			echo "$out" | comment
			break
		fi
		[ "$(v "$db" "SELECT extversion FROM pg_extension WHERE extname = 'wallet'")" = "$step" ] || { failed_step="$step (version not reached)"; break; }
	done
	if [ -n "$failed_step" ]; then
		not_ok "ALTER EXTENSION wallet UPDATE step by step from $x (failed at $failed_step)"
		continue
	fi
	ok "ALTER EXTENSION wallet UPDATE step by step from $x to $NEWEST"
	if describe "$db" "$work/from_$x.desc"; then
		same "updated from $x: same objects as a fresh $NEWEST install" "$work/fresh.desc" "$work/from_$x.desc"
	else
		not_ok "catalog description after updating from $x"
	fi
	bad=$(v "$db" "SELECT coalesce(string_agg(check_name || ': ' || detail, '; '), '') FROM wallet.verify() WHERE NOT ok")
	if [ -z "$bad" ]; then ok "updated from $x: wallet.verify() all ok on the old history"; else not_ok "updated from $x: wallet.verify() all ok on the old history"; echo "$bad" | comment; fi
	if [ -n "$head" ]; then
		bad=$(v "$db" "SELECT coalesce(string_agg(check_name || ': ' || detail, '; '), '') FROM wallet.audit_verify('$head') WHERE NOT ok")
		if [ -z "$bad" ]; then ok "updated from $x: audit_verify(head sealed on $x) ok"; else not_ok "updated from $x: audit_verify(head sealed on $x) ok"; echo "$bad" | comment; fi
	fi
	# The journal per account (1.1.0): the old journal reads the same by
	# account before the first filing pass (all of it in the tail) and after.
	if [ "$(v "$db" "SELECT to_regclass('wallet.account_entries') IS NOT NULL")" = t ]; then
		diffq="SELECT count(*) FROM ((SELECT account_id, txn_id, units FROM wallet.account_entries
		                             EXCEPT ALL SELECT account_id, txn_id, amount FROM wallet.entry)
		                            UNION ALL (SELECT account_id, txn_id, amount FROM wallet.entry
		                             EXCEPT ALL SELECT account_id, txn_id, units FROM wallet.account_entries)) d"
		out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" 2>&1 <<SQL
$diffq;
SELECT wallet.index_history() >= 0;
SELECT (SELECT count(*) FROM wallet.account_history) > 0, wallet.history_merged_through() >= (SELECT max(id) FROM wallet.txn);
$diffq;
SQL
)
		if [ "$(echo $out)" = "0 t t|t 0" ]; then ok "updated from $x: the old journal reads the same per account, before and after it is filed"
		else not_ok "updated from $x: the old journal reads the same per account, before and after it is filed"; echo "$out" | comment; fi
	fi
	out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" 2>&1 <<'SQL'
SELECT wallet.transfer((SELECT id FROM wallet.accounts WHERE owner = 'u-mint'), (SELECT id FROM wallet.accounts WHERE owner = 'u-coin'),
                       '2 UPGC', 'u-after-update') > (SELECT max(id) FROM wallet.txn WHERE idempotency_key <> 'u-after-update');
SELECT wallet.digest() IS NOT NULL;
SELECT count(*) FROM wallet.verify() WHERE NOT ok;
SQL
)
	if [ "$(echo $out)" = "t t 0" ]; then ok "updated from $x: new postings and a new seal work"; else not_ok "updated from $x: new postings and a new seal work"; echo "$out" | comment; fi
done

# Schema wallet must belong to a superuser (1.4.0): a role that owned a
# schema wallet created before the extension could rename it and put its
# own wallet.* where the SECURITY DEFINER functions and the background
# worker look, with superuser rights.  CREATE EXTENSION into it is 42501,
# and so is ALTER EXTENSION UPDATE from an older version installed into it.
db=${P}_schema_owner
fresh_db "$db"
out=$(psql -X -q -At -d "$db" 2>&1 <<'SQL'
DROP ROLE IF EXISTS wallet_upg_schema_owner;
CREATE ROLE wallet_upg_schema_owner;
CREATE SCHEMA wallet AUTHORIZATION wallet_upg_schema_owner;
\set VERBOSITY verbose
CREATE EXTENSION wallet;
SQL
)
if grep -q "ERROR:  42501: schema wallet is owned by role wallet_upg_schema_owner, which is not a superuser" <<<"$out" &&
   [ "$(v "$db" "SELECT count(*) FROM pg_extension WHERE extname = 'wallet'")" = 0 ]; then
	ok "CREATE EXTENSION into a schema wallet owned by a non-superuser: 42501, nothing installed"
else not_ok "CREATE EXTENSION into a schema wallet owned by a non-superuser: 42501, nothing installed"; echo "$out" | comment; fi
prev=$(ls "$SHAREDIR"/extension/wallet--1.3.0.sql >/dev/null 2>&1 && echo 1.3.0)
if [ -n "$prev" ]; then
	out=$(psql -X -q -At -d "$db" 2>&1 <<SQL
CREATE EXTENSION wallet VERSION '$prev';
\set VERBOSITY verbose
ALTER EXTENSION wallet UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'wallet';
ALTER SCHEMA wallet OWNER TO CURRENT_USER;
ALTER EXTENSION wallet UPDATE;
SELECT extversion = (SELECT default_version FROM pg_available_extensions WHERE name = 'wallet') FROM pg_extension WHERE extname = 'wallet';
SQL
)
	if grep -q "ERROR:  42501: schema wallet is owned by role" <<<"$out" && grep -qx "$prev" <<<"$out" && grep -qx t <<<"$out"; then
		ok "ALTER EXTENSION UPDATE from $prev in such a schema: 42501; updates once the schema is given to a superuser"
	else not_ok "ALTER EXTENSION UPDATE from $prev in such a schema: 42501; updates once the schema is given to a superuser"; echo "$out" | comment; fi
fi
dropdb --if-exists --force "$db" >/dev/null 2>&1
psql -X -q -d postgres -c "DROP ROLE IF EXISTS wallet_upg_schema_owner" >/dev/null 2>&1

# The 1.3.0 library flagged a forced posting only when the balance went
# below zero; verify() counts held funds, so a forced reversal that left an
# account between zero and its held amount was reported as an overdraft for
# as long as the hold stayed.  The update flags such accounts (the UPDATE
# below reproduces what the 1.3.0 library left).
if [ -n "$prev" ]; then
	db=${P}_forced
	fresh_db "$db"
	out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" 2>&1 <<SQL
CREATE EXTENSION wallet VERSION '$prev';
SELECT wallet.open_account('src', 'USD', 'system', true) AS s \\gset
SELECT wallet.open_account('a', 'USD') AS a \\gset
SELECT wallet.open_account('b', 'USD') AS b \\gset
SELECT wallet.transfer(:s, :a, '50 USD', 'k1') AS t1 \\gset
SELECT wallet.transfer(:s, :a, '50 USD', 'k2') AS t2 \\gset
SELECT wallet.hold(:a, :b, '60 USD', 'h1') AS h1 \\gset
SELECT wallet.reverse(:t2, 'r2', NULL, true) AS r2 \\gset
UPDATE wallet.account SET forced_negative = false WHERE id = :a;
SELECT count(*) FROM wallet.verify() WHERE NOT ok;
ALTER EXTENSION wallet UPDATE;
SELECT count(*) FROM wallet.verify() WHERE NOT ok;
SQL
)
	if [ "$(echo $out)" = "1 0" ]; then ok "update from $prev: an account a forced reversal left below its held amount is flagged, verify() ok"
	else not_ok "update from $prev: an account a forced reversal left below its held amount is flagged, verify() ok"; echo "$out" | comment; fi
	dropdb --if-exists --force "$db" >/dev/null 2>&1
fi

# Rights kept (1.6.0 recreates two views): roles given rights with
# wallet.grant_app / grant_reader on an older version keep every right they
# had, hold after the update exactly what grant_app / grant_reader give on
# the new version (calling them again changes no ACL), and none of those
# rights is recorded as an initial privilege of the extension (pg_dump
# leaves initial privileges out, so a restore would lose them).  Rights
# given by hand survive too, exactly (grantor included): a column-level
# grant and a grant-option chain on the two views 1.6.0 recreates.  The
# update runs as another superuser than the one that installed: the views
# keep their owner, and pg_dump grants that superuser nothing.
acls="SELECT string_agg(line, E'\n' ORDER BY line COLLATE \"C\") FROM (
  SELECT format('%s %s', c.oid::regclass, c.relacl) AS line FROM pg_class c WHERE c.relnamespace = 'wallet'::regnamespace
  UNION ALL SELECT format('%s %s', p.oid::regprocedure, p.proacl) FROM pg_proc p WHERE p.pronamespace = 'wallet'::regnamespace
  UNION ALL SELECT format('schema %s', n.nspacl) FROM pg_namespace n WHERE n.nspname = 'wallet') s"
rights="SELECT string_agg(format(E'%s\t%s\t%s', r, o, p), E'\n' ORDER BY 1) FROM (
  SELECT r, c.oid::regclass::text AS o, p FROM unnest(ARRAY['wallet_upg_app', 'wallet_upg_reader']) r,
         pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
   WHERE c.relnamespace = 'wallet'::regnamespace AND c.relkind IN ('r', 'v', 'S') AND has_table_privilege(r, c.oid, p)
  UNION ALL
  SELECT r, p.oid::regprocedure::text, 'EXECUTE' FROM unnest(ARRAY['wallet_upg_app', 'wallet_upg_reader']) r, pg_proc p
   WHERE p.pronamespace = 'wallet'::regnamespace AND has_function_privilege(r, p.oid, 'EXECUTE')) s"
v postgres "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wallet_upg_app') THEN CREATE ROLE wallet_upg_app; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wallet_upg_reader') THEN CREATE ROLE wallet_upg_reader; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wallet_upg_col') THEN CREATE ROLE wallet_upg_col; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wallet upg gopt') THEN CREATE ROLE \"wallet upg gopt\"; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wallet_upg_sub') THEN CREATE ROLE wallet_upg_sub; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wallet_upg_admin2') THEN CREATE ROLE wallet_upg_admin2 SUPERUSER; END IF;
END \$\$" >/dev/null
byhand="GRANT SELECT (id, kind) ON wallet.transactions TO wallet_upg_col;
GRANT USAGE ON SCHEMA wallet TO \"wallet upg gopt\";
GRANT SELECT ON wallet.holds TO \"wallet upg gopt\" WITH GRANT OPTION;
SET ROLE \"wallet upg gopt\"; GRANT SELECT ON wallet.holds TO wallet_upg_sub; RESET ROLE;"
views="SELECT string_agg(format('%s owner=%s acl=%s cols=%s', c.oid::regclass, c.relowner::regrole, c.relacl,
                              (SELECT string_agg(a.attname || '=' || a.attacl::text, ' ' ORDER BY a.attnum)
                                 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL)), E'\n' ORDER BY c.oid::regclass::text)
         FROM pg_class c WHERE c.oid IN ('wallet.transactions'::regclass, 'wallet.holds'::regclass)"
# the extension's initial privileges, as a fresh install records them
initq="SELECT coalesce(string_agg(format('%s %s %s', pg_describe_object(i.classoid, i.objoid, i.objsubid), i.privtype, i.initprivs),
                                  E'\n'), '')
         FROM pg_init_privs i
        WHERE (i.classoid, i.objoid) IN (SELECT d.classid, d.objid FROM pg_depend d
                                          WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                                            AND d.refobjid = (SELECT x.oid FROM pg_extension x WHERE x.extname = 'wallet'))
           OR i.objoid = 'wallet'::regnamespace"
fresh_db "${P}_rights_fresh" && v "${P}_rights_fresh" "CREATE EXTENSION wallet" >/dev/null &&
	v "${P}_rights_fresh" "$initq" | LC_ALL=C sort >"$work/init_fresh"
dropdb --if-exists --force "${P}_rights_fresh" >/dev/null 2>&1
for x in "${OLDER[@]}"; do
	db="${P}_rights_$(echo "$x" | tr -c 'A-Za-z0-9\n' '_')"
	fresh_db "$db" || { not_ok "createdb $db"; continue; }
	if ! out=$(v "$db" "CREATE EXTENSION wallet VERSION '$x'" && v "$db" "SELECT wallet.grant_app('wallet_upg_app'); SELECT wallet.grant_reader('wallet_upg_reader')" &&
	           psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" -c "$byhand" 2>&1 && v "$db" "$views" >"$work/views_$x.before" &&
	           v "$db" "$rights" >"$work/rights_$x.before" && v "$db" "SET ROLE wallet_upg_admin2; ALTER EXTENSION wallet UPDATE TO '$NEWEST'"); then
		not_ok "rights kept from $x: install, grant and update"
		echo "$out" | comment
		continue
	fi
	v "$db" "$rights" >"$work/rights_$x.after"
	# objects an update dropped or replaced (amount_sum_accum's 1.3.0
	# signature) have no rights left to keep
	v "$db" "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relnamespace = 'wallet'::regnamespace
	         UNION ALL SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'wallet'::regnamespace" >"$work/objects_$x"
	lost=$(comm -23 <(sort "$work/rights_$x.before") <(sort "$work/rights_$x.after") |
	       awk -F '\t' 'NR == FNR { o[$0] = 1; next } ($2 in o)' "$work/objects_$x" - || true)
	if [ -z "$lost" ]; then ok "rights kept from $x: every right grant_app / grant_reader gave on $x holds after the update"
	else not_ok "rights kept from $x: every right grant_app / grant_reader gave on $x holds after the update"; echo "$lost" | head -n 20 | comment; fi
	v "$db" "$acls" >"$work/acl_$x.updated"
	v "$db" "SELECT wallet.grant_app('wallet_upg_app'); SELECT wallet.grant_reader('wallet_upg_reader')" >/dev/null
	v "$db" "$acls" >"$work/acl_$x.regranted"
	if diff -u "$work/acl_$x.updated" "$work/acl_$x.regranted" >"$work/diff" 2>&1; then
		ok "rights kept from $x: the roles hold what grant_app / grant_reader give on $NEWEST"
	else not_ok "rights kept from $x: the roles hold what grant_app / grant_reader give on $NEWEST"; head -n 40 "$work/diff" | comment; fi
	v "$db" "$views" >"$work/views_$x.after"
	if diff -u "$work/views_$x.before" "$work/views_$x.after" >"$work/diff" 2>&1; then
		ok "rights kept from $x: wallet.transactions and wallet.holds keep their owner and every right, grantors and column rights included"
	else not_ok "rights kept from $x: wallet.transactions and wallet.holds keep their owner and every right, grantors and column rights included"; comment <"$work/diff"; fi
	if pg_dump -s -d "$db" >"$work/dump_$x.sql" 2>"$work/dump_$x.err" && ! grep -n -E '^(GRANT|REVOKE|ALTER DEFAULT).*wallet_upg_admin2' "$work/dump_$x.sql" >"$work/admin2_$x"; then
		ok "rights kept from $x: after an update run by another superuser, pg_dump -s grants or revokes nothing to that superuser"
	else not_ok "rights kept from $x: after an update run by another superuser, pg_dump -s grants or revokes nothing to that superuser"; head -n 20 "$work/admin2_$x" "$work/dump_$x.err" | comment; fi
	init=$(v "$db" "SELECT coalesce(string_agg(DISTINCT pg_describe_object(i.classoid, i.objoid, i.objsubid), ', '), '')
	                  FROM pg_init_privs i, aclexplode(i.initprivs) a
	                 WHERE a.grantee IN ('wallet_upg_app'::regrole, 'wallet_upg_reader'::regrole)")
	if [ -z "$init" ]; then ok "rights kept from $x: none recorded as an initial privilege of the extension"
	else not_ok "rights kept from $x: none recorded as an initial privilege of the extension"; echo "$init" | comment; fi
	# the objects the update created belong to the superuser that ran it
	v "$db" "$initq" | sed 's/wallet_upg_admin2/postgres/g' | LC_ALL=C sort >"$work/init_$x"
	if diff -u "$work/init_fresh" "$work/init_$x" >"$work/diff" 2>&1; then
		ok "rights kept from $x: the extension's initial privileges are a fresh install's"
	else not_ok "rights kept from $x: the extension's initial privileges are a fresh install's"; head -n 20 "$work/diff" | comment; fi
	dropdb --if-exists --force "$db" >/dev/null 2>&1
done
for r in wallet_upg_app wallet_upg_reader wallet_upg_col '"wallet upg gopt"' wallet_upg_sub wallet_upg_admin2; do
	v postgres "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
done

# 1.6.0: a debt account is never hot.  One made hot before goes back to
# normal in the update, its pending credits folded into its balance.
if printf '%s\n' "${OLDER[@]}" | grep -qx 1.5.0; then
	db=${P}_hot_debt
	fresh_db "$db"
	out=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" 2>&1 <<'SQL'
CREATE EXTENSION wallet VERSION '1.5.0';
SET client_min_messages = warning;
SELECT wallet.live_setup() IS NOT NULL AS x \gset
SELECT wallet.open_account('hd-user', 'COIN') AS u \gset
SELECT wallet.open_account('hd-creator', 'DIAMOND') AS c \gset
SELECT wallet.recharge(:u, '10 COIN', '0.10 USD', 'hd', 'o1') AS r1 \gset
SELECT wallet.gift(:u, :c, '10 COIN', 'hd-g') AS x \gset
SELECT wallet.refund_recharge(:r1, 'x') AS f \gset
SELECT debt_account AS d FROM wallet.account WHERE id = :u \gset
SELECT wallet.set_hot(:d) AS x \gset
SELECT wallet.recharge(:u, '4 COIN', '0.04 USD', 'hd', 'o2') AS r2 \gset
SELECT (SELECT count(*) FROM wallet.hot_pending WHERE account_id = :d), hot FROM wallet.account WHERE id = :d;
ALTER EXTENSION wallet UPDATE TO '1.6.0';
SELECT hot, balance, (SELECT count(*) FROM wallet.hot_pending WHERE account_id = :d) FROM wallet.account WHERE id = :d;
SELECT count(*) FROM wallet.verify() WHERE NOT ok;
SQL
)
	if [ "$(echo $out)" = "1|t f|-6|0 0" ]; then ok "update from 1.5.0: a hot debt account goes back to normal, its pending credit folded (debt 6), verify() ok"
	else not_ok "update from 1.5.0: a hot debt account goes back to normal, its pending credit folded"; echo "$out" | comment; fi
	dropdb --if-exists --force "$db" >/dev/null 2>&1
fi

echo "# $FAILED failed"
[ "$FAILED" = 0 ]
