#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks, from Debian's
# `postgresql` package, with no running service needed.
#   scripts/pg-throwaway.sh start DIR   # prints postgres://jo@127.0.0.1:PORT/jo
#   scripts/pg-throwaway.sh stop DIR    # stops the cluster and removes DIR
#   scripts/pg-throwaway.sh pause DIR   # stops the server, keeps the cluster
#   scripts/pg-throwaway.sh resume DIR  # starts it again on the same port
#   (pause/resume: tests of a database lost and back while a node serves)
# DIR is chosen by the caller (e.g. from mktemp -d) and must not hold another
# cluster. The cluster listens on 127.0.0.1 only (a free port), with its unix
# socket in DIR and trust authentication; database `jo` is owned by role `jo`.
# As root it runs as the `postgres` system user (created as `jo-pg` if that
# does not exist), since initdb and postgres refuse to run as root; otherwise
# as the current user. DIR's parents must be searchable by that user (/tmp is).
# The server log is DIR/postgres.log. Call `stop` even after a failed `start`.
set -euo pipefail

prog=pg-throwaway
marker=.pg-throwaway

die() {
    echo "$prog: $*" >&2
    exit 1
}

usage() {
    die "usage: $0 start DIR | stop DIR | pause DIR | resume DIR"
}

# The server binaries: the highest /usr/lib/postgresql/*/bin, else PATH.
find_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] || continue
        if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n 1)" == "$d" ]]; then
            best=$d
        fi
    done
    if [[ -z "$best" ]]; then
        local initdb
        initdb=$(command -v initdb || true)
        if [[ -n "$initdb" ]] && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
            best=$(dirname "$initdb")
        fi
    fi
    [[ -n "$best" ]] || die "PostgreSQL is not installed (no initdb/pg_ctl/postgres in /usr/lib/postgresql/*/bin or PATH); install Debian's postgresql package"
    printf '%s\n' "$best"
}

find_psql() {
    local bindir=$1
    if [[ -x "$bindir/psql" ]]; then
        printf '%s\n' "$bindir/psql"
    elif command -v psql >/dev/null; then
        command -v psql
    else
        die "psql not found (install Debian's postgresql-client package)"
    fi
}

# The unprivileged user that owns and runs the cluster.
pick_user() {
    if [[ "$(id -u)" -ne 0 ]]; then
        id -un
    elif id -u postgres >/dev/null 2>&1; then
        echo postgres
    else
        if ! id -u jo-pg >/dev/null 2>&1; then
            useradd --system --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin jo-pg >&2 || die "cannot create system user jo-pg"
        fi
        echo jo-pg
    fi
}

# Runs a command as user $1 (directly when that is the current user).
as_user() {
    local user=$1
    shift
    if [[ "$(id -un)" == "$user" ]]; then
        "$@"
    else
        command -v runuser >/dev/null || die "runuser not found (util-linux)"
        runuser -u "$user" -- "$@"
    fi
}

# The port picker beside this script (it runs after a `cd /`).
free_ports="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)/free-ports"

start() {
    local dir=$1 bindir psql user port attempt started=""
    command -v python3 >/dev/null || die "python3 not found (needed to pick a free port)"
    bindir=$(find_bindir)
    psql=$(find_psql "$bindir")
    user=$(pick_user)

    mkdir -p -- "$dir" || die "cannot create $dir"
    dir=$(cd -- "$dir" && pwd -P)
    [[ ! -e "$dir/data" ]] || die "$dir/data already exists; give a fresh directory"
    : >"$dir/$marker"
    chmod 700 "$dir"
    if [[ "$(id -un)" != "$user" ]]; then
        chown -R "$user:" "$dir" || die "cannot give $dir to user $user"
    fi
    cd /
    as_user "$user" test -w "$dir" \
        || die "user $user cannot write $dir (are its parent directories searchable by $user?)"

    if ! as_user "$user" "$bindir/initdb" -D "$dir/data" -U postgres \
        --auth-local=trust --auth-host=trust --encoding=UTF8 --locale=C \
        >"$dir/initdb.log" 2>&1; then
        die "initdb failed, see $dir/initdb.log"
    fi

    # Trust, on the private unix socket and on 127.0.0.1 only.
    as_user "$user" tee "$dir/data/pg_hba.conf" >/dev/null <<'HBA'
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
HBA

    for attempt in 1 2 3 4 5; do
        port=$("$free_ports") || die "cannot pick a free port"
        as_user "$user" tee "$dir/data/postgresql.auto.conf" >/dev/null <<CONF
# Written by scripts/pg-throwaway.sh.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = on
CONF
        if as_user "$user" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
            -w -t 60 start >>"$dir/pg_ctl.log" 2>&1; then
            started=yes
            break
        fi
        # Most likely the port was taken between picking and binding: retry.
        echo "$prog: start attempt $attempt on port $port failed" >>"$dir/pg_ctl.log"
    done
    [[ -n "$started" ]] || die "the server did not start, see $dir/postgres.log"
    echo "$port" >"$dir/port"

    if ! as_user "$user" "$psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
        -c 'CREATE ROLE jo LOGIN CREATEDB' -c 'CREATE DATABASE jo OWNER jo' >>"$dir/psql.log" 2>&1; then
        die "cannot create role and database jo, see $dir/psql.log"
    fi

    echo "postgres://jo@127.0.0.1:$port/jo"
}

stop() {
    local dir=$1 bindir user
    [[ -d "$dir" ]] || die "$dir does not exist"
    dir=$(cd -- "$dir" && pwd -P)
    [[ -e "$dir/$marker" ]] || die "$dir was not made by $0 start; not touching it"
    cd /
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        bindir=$(find_bindir)
        user=$(stat -c %U "$dir/data")
        as_user "$user" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
            || die "pg_ctl stop failed for $dir/data (see $dir/postgres.log); $dir left in place"
    fi
    rm -rf -- "$dir"
}

# pg_ctl stop (pause) or start (resume) on a cluster made by start.
pause_or_resume() {
    local what=$1 dir=$2 bindir user
    [[ -e "$dir/$marker" ]] || die "$dir was not made by $0 start; not touching it"
    dir=$(cd -- "$dir" && pwd -P)
    cd /
    bindir=$(find_bindir)
    user=$(stat -c %U "$dir/data")
    if [[ "$what" == pause ]]; then
        as_user "$user" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >>"$dir/pg_ctl.log" 2>&1 \
            || die "pg_ctl stop failed, see $dir/postgres.log"
    else
        as_user "$user" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start \
            >>"$dir/pg_ctl.log" 2>&1 || die "pg_ctl start failed, see $dir/postgres.log"
    fi
}

[[ $# -eq 2 && -n "$2" ]] || usage
case "$1" in
    start) start "$2" ;;
    stop) stop "$2" ;;
    pause | resume) pause_or_resume "$1" "$2" ;;
    *) usage ;;
esac
