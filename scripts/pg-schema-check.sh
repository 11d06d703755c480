#!/usr/bin/env bash
# Checks that the PostgreSQL baseline (server/src/db/migrations/pg/0001_baseline.sql)
# matches the SQLite schema at version 8: starts a throwaway cluster
# (scripts/pg-throwaway.sh), applies the baseline with psql, builds a SQLite
# database from the first 8 migrations of server/src/db/migrations.rs with the
# sqlite3 CLI, then compares table by table: column names in order, types,
# NOT NULL, defaults, NOCASE collations, primary keys, UNIQUE constraints,
# index names (with their columns, uniqueness and partial WHERE), foreign keys
# (with ON DELETE), the number of CHECK constraints, views and triggers.
# Prints each difference and exits 1 on any.
#   scripts/pg-schema-check.sh         (PG_BASELINE=FILE checks another script)
set -euo pipefail
cd "$(dirname "$0")/.."

baseline=${PG_BASELINE:-server/src/db/migrations/pg/0001_baseline.sql}
baseline_version=8

die() {
    echo "pg-schema-check: $*" >&2
    exit 1
}

command -v python3 >/dev/null || die "python3 not found"
if ! command -v sqlite3 >/dev/null; then
    [[ "$(id -u)" -eq 0 ]] || die "sqlite3 not found (apt-get install sqlite3)"
    echo "pg-schema-check: installing sqlite3" >&2
    apt-get install -y sqlite3 >&2 || { apt-get update >&2 && apt-get install -y sqlite3 >&2; } \
        || die "cannot install sqlite3"
fi

pgdir=""
sqlitedir=$(mktemp -d)
cleanup() {
    if [[ -n "$pgdir" && -e "$pgdir/.pg-throwaway" ]]; then
        scripts/pg-throwaway.sh stop "$pgdir" || true
    elif [[ -n "$pgdir" ]]; then
        rm -rf -- "$pgdir"
    fi
    rm -rf -- "$sqlitedir"
}
trap cleanup EXIT

pgdir=$(mktemp -d)
url=$(scripts/pg-throwaway.sh start "$pgdir")
psql -X -q -v ON_ERROR_STOP=1 "$url" -f "$baseline" >/dev/null || die "applying $baseline failed"

# SQLite at version 8: the MIGRATIONS of migrations.rs, in order (raw strings
# inline, include_str! files read), each followed by its user_version, in one
# transaction like db::migrations::apply.
db=$sqlitedir/v$baseline_version.sqlite
python3 - server/src/db/migrations.rs "$baseline_version" >"$sqlitedir/migrate.sql" <<'PY'
import os, re, sys

path, count = sys.argv[1], int(sys.argv[2])
src = open(path, encoding="utf-8").read()
start = src.index("pub const MIGRATIONS")
body = src[src.index("[", src.index("=", start)) + 1:]
migrations = []
for m in re.finditer(r'r#"(.*?)"#|include_str!\(\s*"([^"]+)"\s*\)|(\];)', body, re.S):
    if m.group(3):
        break
    if m.group(1) is not None:
        migrations.append(m.group(1))
    else:
        inc = os.path.join(os.path.dirname(path), m.group(2))
        migrations.append(open(inc, encoding="utf-8").read())
if len(migrations) < count:
    sys.exit(f"pg-schema-check: {path} has {len(migrations)} migrations, expected at least {count}")
print("BEGIN IMMEDIATE;")
for i, sql in enumerate(migrations[:count], 1):
    print(sql)
    print(f";\nPRAGMA user_version = {i};")
print("COMMIT;")
PY
sqlite3 -bail "$db" <"$sqlitedir/migrate.sql" || die "building the SQLite database failed"
[[ "$(sqlite3 "$db" 'PRAGMA user_version')" == "$baseline_version" ]] \
    || die "the SQLite database is not at version $baseline_version"

python3 - "$url" "$db" <<'PY'
import re, subprocess, sys
from collections import defaultdict

url, db = sys.argv[1], sys.argv[2]

# PostgreSQL-only objects the baseline adds on purpose (trigger functions are
# not compared; TRUNCATE skips row triggers, so audit_log refuses it too).
PG_ONLY_TRIGGERS = {("audit_log", "audit_log_no_truncate")}
TYPES = {"INTEGER": "bigint", "TEXT": "text", "BLOB": "bytea", "REAL": "double precision"}

def rows(cmd, sql):
    out = subprocess.run(cmd + [sql], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]

def lite(sql):
    return rows(["sqlite3", "-batch", "-noheader", "-separator", "\t", db], sql)

def pg(sql):
    return rows(["psql", "-X", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", url, "-c"], sql)

# --- SQLite -----------------------------------------------------------------
L = {}
tables = [r[0] for r in lite("SELECT name FROM sqlite_schema WHERE type = 'table' "
                               "AND name NOT LIKE 'sqlite_%' ORDER BY name")]

def norm_pred(pred):
    """A partial index's WHERE clause in a form both dialects share: no casts,
    `x = ANY (ARRAY[a, b])` as `x IN (a, b)`, no parentheses or blanks."""
    pred = re.sub(r"::[a-z ]+", "", pred)
    pred = re.sub(r"= ANY \(ARRAY\[([^\]]*)\]\)", r"IN (\1)", pred)
    return re.sub(r"[()\s]", "", pred).lower()

def split_defs(sql):
    """Column and constraint definitions of a CREATE TABLE, comments removed."""
    sql = re.sub(r"--[^\n]*", "", sql)
    inner = sql[sql.index("(") + 1:sql.rindex(")")]
    parts, depth, cur, quote = [], 0, "", False
    for ch in inner:
        if ch == "'":
            quote = not quote
        if not quote:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            elif ch == "," and depth == 0:
                parts.append(cur.strip()); cur = ""; continue
        cur += ch
    parts.append(cur.strip())
    return parts

for t in tables:
    info = {"cols": [], "pk": [], "unique": set(), "indexes": {}, "fks": set(), "checks": 0}
    create = lite(f"SELECT sql FROM sqlite_schema WHERE name = '{t}'")
    create = "\n".join("\t".join(r) for r in create)
    collations = {}
    for d in split_defs(create):
        info["checks"] += len(re.findall(r"\bCHECK\s*\(", d, re.I))
        first = d.split()[0]
        if first.upper() not in ("PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT"):
            m = re.search(r"\bCOLLATE\s+(\w+)", d, re.I)
            collations[first.strip('"')] = m.group(1).lower() if m else ""
    pks = []
    for cid, name, typ, notnull, dflt, pk in lite(
            f"SELECT cid, name, type, \"notnull\", coalesce(dflt_value, ''), pk "
            f"FROM pragma_table_info('{t}') ORDER BY cid"):
        info["cols"].append({"name": name, "type": TYPES.get(typ.upper(), "?" + typ),
                             "notnull": notnull == "1" or pk != "0", "default": dflt,
                             "collation": collations.get(name, "")})
        if pk != "0":
            pks.append((int(pk), name))
    info["pk"] = [n for _, n in sorted(pks)]
    for name, unique, origin, partial, cols in lite(
            f"SELECT il.name, il.\"unique\", il.origin, il.partial, "
            f"(SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(il.name) ORDER BY seqno)) "
            f"FROM pragma_index_list('{t}') il"):
        if origin == "u":
            info["unique"].add(cols)
        elif origin == "c":
            isql = lite(f"SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = '{name}'")
            isql = " ".join("\t".join(r) for r in isql)
            m = re.search(r"\bWHERE\b(.*)$", isql, re.I | re.S)
            info["indexes"][name] = (unique == "1", norm_pred(m.group(1)) if m else "", cols)
    fks = defaultdict(list)
    for fid, seq, ref, frm, to, ondel in lite(
            f"SELECT id, seq, \"table\", \"from\", coalesce(\"to\", ''), on_delete "
            f"FROM pragma_foreign_key_list('{t}') ORDER BY id, seq"):
        fks[fid].append((ref, frm, to, ondel))
    for parts in fks.values():
        info["fks"].add((",".join(p[1] for p in parts), parts[0][0],
                         ",".join(p[2] for p in parts), parts[0][3]))
    L[t] = info
L_views = {r[0] for r in lite("SELECT name FROM sqlite_schema WHERE type = 'view'")}
L_triggers = {(r[0], r[1]) for r in lite("SELECT tbl_name, name FROM sqlite_schema WHERE type = 'trigger'")}

# --- PostgreSQL ---------------------------------------------------------------
P = {}
for t, in pg("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
             "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"):
    P[t] = {"cols": [], "pk": [], "unique": set(), "indexes": {}, "fks": set(), "checks": 0}
for t, _, name, typ, notnull, dflt, coll in pg("""
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
               CASE WHEN a.attcollation IN (0, 100) THEN '' ELSE co.collname END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2"""):
    dflt = re.sub(r"::(text|bigint|integer)$", "", dflt)
    P[t]["cols"].append({"name": name, "type": typ, "notnull": notnull == "t",
                         "default": dflt, "collation": coll})
for t, name, unique, pred, cols, contype in pg("""
        SELECT t.relname, i.relname, ix.indisunique, coalesce(pg_get_expr(ix.indpred, ix.indrelid), ''),
               (SELECT string_agg(a.attname, ',' ORDER BY k.ord)
                FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
                JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum),
               coalesce((SELECT con.contype FROM pg_constraint con
                         WHERE con.conindid = ix.indexrelid AND con.conrelid = t.oid
                           AND con.contype IN ('p', 'u')), '')
        FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
        JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = 'public'"""):
    if contype == "p":
        P[t]["pk"] = cols.split(",")
    elif contype == "u":
        P[t]["unique"].add(cols)
    else:
        P[t]["indexes"][name] = (unique == "t", norm_pred(pred), cols)
ONDEL = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
for t, frm, ref, to, ondel in pg("""
        SELECT c.conrelid::regclass::text,
               (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(n, ord)
                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n),
               c.confrelid::regclass::text,
               (SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY k(n, ord)
                JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n),
               c.confdeltype
        FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"""):
    P[t]["fks"].add((frm, ref, to, ONDEL[ondel]))
for t, n in pg("SELECT conrelid::regclass::text, count(*) FROM pg_constraint "
               "WHERE contype = 'c' AND connamespace = 'public'::regnamespace GROUP BY 1"):
    P[t]["checks"] = int(n)
P_views = {r[0] for r in pg("SELECT viewname FROM pg_views WHERE schemaname = 'public'")}
P_triggers = {(r[0], r[1]) for r in pg("SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                                         "WHERE NOT tgisinternal")} - PG_ONLY_TRIGGERS

# --- Comparison ---------------------------------------------------------------
diffs = []
for t in sorted(set(L) - set(P)):
    diffs.append(f"table {t}: only in SQLite")
for t in sorted(set(P) - set(L)):
    diffs.append(f"table {t}: only in PostgreSQL")
ncols = nidx = 0
for t in sorted(set(L) & set(P)):
    l, p = L[t], P[t]
    lnames, pnames = [c["name"] for c in l["cols"]], [c["name"] for c in p["cols"]]
    if lnames != pnames:
        diffs.append(f"table {t}: columns differ\n  SQLite:     {', '.join(lnames)}\n  PostgreSQL: {', '.join(pnames)}")
    else:
        for lc, pc in zip(l["cols"], p["cols"]):
            for key in ("type", "notnull", "default", "collation"):
                if lc[key] != pc[key]:
                    diffs.append(f"column {t}.{lc['name']}: {key} SQLite {lc[key]!r}, PostgreSQL {pc[key]!r}")
        ncols += len(lnames)
    if l["pk"] != p["pk"]:
        diffs.append(f"table {t}: primary key SQLite ({','.join(l['pk'])}), PostgreSQL ({','.join(p['pk'])})")
    for u in sorted(l["unique"] ^ p["unique"]):
        side = "SQLite" if u in l["unique"] else "PostgreSQL"
        diffs.append(f"table {t}: UNIQUE ({u}) only in {side}")
    for name in sorted(set(l["indexes"]) | set(p["indexes"])):
        if name not in p["indexes"]:
            diffs.append(f"index {name} on {t}: only in SQLite")
        elif name not in l["indexes"]:
            diffs.append(f"index {name} on {t}: only in PostgreSQL")
        elif l["indexes"][name] != p["indexes"][name]:
            diffs.append(f"index {name} on {t}: (unique, WHERE, columns) SQLite {l['indexes'][name]}, "
                         f"PostgreSQL {p['indexes'][name]}")
        else:
            nidx += 1
    for fk in sorted(l["fks"] ^ p["fks"]):
        side = "SQLite" if fk in l["fks"] else "PostgreSQL"
        diffs.append(f"table {t}: foreign key ({fk[0]}) -> {fk[1]}({fk[2]}) ON DELETE {fk[3]} only in {side}")
    if l["checks"] != p["checks"]:
        diffs.append(f"table {t}: {l['checks']} CHECK constraints in SQLite, {p['checks']} in PostgreSQL")
for v in sorted(L_views ^ P_views):
    diffs.append(f"view {v}: only in {'SQLite' if v in L_views else 'PostgreSQL'}")
for tr in sorted(L_triggers ^ P_triggers):
    diffs.append(f"trigger {tr[1]} on {tr[0]}: only in {'SQLite' if tr in L_triggers else 'PostgreSQL'}")

if diffs:
    print("\n".join(diffs))
    print(f"pg-schema-check: {len(diffs)} difference(s) between SQLite version 8 and the PostgreSQL baseline",
          file=sys.stderr)
    sys.exit(1)
print(f"pg-schema-check: OK: {len(L)} tables, {ncols} columns, {nidx} indexes, "
      f"{len(L_views)} view(s), {len(L_triggers)} triggers match")
PY
