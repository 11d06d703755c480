# Sourced by the benchmark scripts: the backend argument and the PostgreSQL
# server the PostgreSQL runs use.
#   bench_backend "$@"   reads an optional leading `--backend sqlite|postgres|all`
#                        into $backend (default all) and leaves the rest in $rest
#   bench_pg             sets $pg_url to the server to use: JO_BENCH_DATABASE_URL,
#                        else a throwaway cluster started now and removed at exit

bench_backend() {
    backend=all
    if [[ ${1:-} == --backend ]]; then
        backend=${2:?"--backend needs sqlite, postgres or all"}
        shift 2
    fi
    case $backend in sqlite | postgres | all) ;; *)
        echo "unknown backend '$backend': sqlite, postgres or all" >&2
        exit 2
        ;;
    esac
    rest=("$@")
}

bench_pg() {
    if [[ -n ${JO_BENCH_DATABASE_URL:-} ]]; then
        pg_url=$JO_BENCH_DATABASE_URL
        return
    fi
    bench_pgdir="$(mktemp -u "${TMPDIR:-/tmp}/jo-bench-pg.XXXXXX")"
    trap 'scripts/pg-throwaway.sh stop "$bench_pgdir" >/dev/null 2>&1 || true' EXIT
    pg_url="$(scripts/pg-throwaway.sh start "$bench_pgdir")"
    echo "   (a throwaway PostgreSQL: $(psql --version | head -1))"
}
