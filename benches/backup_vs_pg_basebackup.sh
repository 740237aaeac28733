#!/usr/bin/env bash
# barman backup (BASE_BACKUP spoken natively) against pg_basebackup, on the same
# throwaway PostgreSQL 15 cluster holding pgbench data, one storage format at a time:
#
#   plain  barman: backup_compression unset       pg_basebackup -Fp
#   lz4    barman: backup_compression = lz4        pg_basebackup -Ft --compress=client-lz4
#   gzip   barman: backup_compression = gzip       pg_basebackup -Ft --compress=client-gzip
#   zstd   barman: backup_compression = zstd       pg_basebackup -Ft --compress=client-zstd
#
# (Barman keeps tar files only when they are compressed, so the tar formats are the
# compressed ones. Compression levels are both tools' defaults: gzip 6, lz4 and zstd
# defaults; barman's zstd uses backup_compression_workers threads, by default one per core
# up to 8, pg_basebackup's client zstd one.) Both tools take a fast checkpoint, write a
# CRC-32C manifest and copy no WAL (-X none, as Barman runs pg_basebackup).
#
#   benches/backup_vs_pg_basebackup.sh                 # --scale 100 --runs 3
#   benches/backup_vs_pg_basebackup.sh --scale 20 --runs 2 --formats "plain zstd"
#
# Runs alternate, barman then pg_basebackup (A B A B ...), each output removed after it is
# measured. Prints, per format and tool, the median wall time, user+sys CPU time, peak RSS
# (/usr/bin/time) and output size, and the ratio barman / pg_basebackup (below 1: barman
# used less). The server's own work (the walsender reading files) is the same for both and
# is not counted. Run as root (PostgreSQL then runs as the `postgres` user) or as a user
# owning the scratch directory; the cluster is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=100
runs=3
formats="plain lz4 gzip zstd"
while [ $# -gt 0 ]; do
    case "$1" in
        --scale) scale=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --formats) formats=$2; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (--scale N, --runs N, --formats \"plain lz4 gzip zstd\")" >&2; exit 2 ;;
    esac
done

cargo build --release --quiet
barman="${CARGO_TARGET_DIR:-$(pwd)/target}/release/barman"
bindir=$(BARMAN_PG_VERSIONS=15 bash scripts/install-postgres | awk '$1 == 15 { print $2 }')
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

scratch=$(mktemp -d /tmp/barman-bbbench.XXXXXX)
chmod 755 "$scratch"
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); chown postgres: "$scratch"; else as_pg=(); fi
data="$scratch/data"
cleanup() {
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust -N >/dev/null
"${as_pg[@]}" sh -c "cat >> '$data/postgresql.conf'" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$scratch'
wal_level = replica
max_wal_senders = 10
max_wal_size = 4GB
synchronous_commit = off
CONF
"${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -l "$scratch/server.log" -w start >/dev/null
conn="host=127.0.0.1 port=$port user=postgres"
echo "pgbench -i -s $scale ..."
"$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s "$scale" -q postgres >"$scratch/pgbench.out" 2>&1
"$bindir/psql" -XAtq -d "$conn dbname=postgres" -c "checkpoint"
echo "cluster size: $("$bindir/psql" -XAtq -d "$conn dbname=postgres" -c "select pg_size_pretty(sum(pg_database_size(oid))) from pg_database")"

mkdir -p "$scratch/home" "$scratch/out"
results="$scratch/results"
: > "$results"

# One timed run: FORMAT TOOL OUTPUT_DIR COMMAND...; appends "format tool wall cpu rss bytes".
measure() {
    local format=$1 tool=$2 out=$3
    shift 3
    /usr/bin/time -f "%e %U %S %M" -o "$scratch/time" "$@" >"$scratch/run.out" 2>&1 || {
        echo "$tool ($format) failed:" >&2
        cat "$scratch/run.out" >&2
        exit 1
    }
    read -r wall user sys rss < "$scratch/time"
    local bytes
    bytes=$(du -sb "$out" | cut -f1)
    echo "$format $tool $wall $(python3 -c "print($user + $sys)") $rss $bytes" >> "$results"
    rm -rf "$out"
}

for format in $formats; do
    case "$format" in
        plain) options=""; pgbb=(-Fp) ;;
        lz4|gzip|zstd) options="backup_compression = $format"; pgbb=(-Ft "--compress=client-$format") ;;
        *) echo "unknown format $format (plain, lz4, gzip, zstd)" >&2; exit 2 ;;
    esac
    cat > "$scratch/barman.conf" <<CONF
[barman]
barman_home = $scratch/home
barman_user = $(id -un)
log_file = $scratch/barman.log
[pg]
conninfo = $conn dbname=postgres
backup_method = postgres
archiver = on
immediate_checkpoint = true
$options
CONF
    for run in $(seq "$runs"); do
        echo "$format: run $run of $runs"
        rm -rf "$scratch/home/pg/base" "$scratch/home/pg/meta"
        measure "$format" barman "$scratch/home/pg/base" \
            "$barman" -q -c "$scratch/barman.conf" backup pg
        measure "$format" pg_basebackup "$scratch/out/pgbb" \
            "$bindir/pg_basebackup" -d "$conn" -D "$scratch/out/pgbb" "${pgbb[@]}" \
            -X none -c fast --manifest-checksums=CRC32C
    done
done

python3 - "$results" "$scale" "$runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(f"\npgbench scale {sys.argv[2]}, {sys.argv[3]} run(s) each, medians:")
print(f"{'format':<7}{'tool':<15}{'wall s':>9}{'cpu s':>9}{'RSS MiB':>10}{'size MiB':>10}")
formats = []
for r in rows:
    if r[0] not in formats:
        formats.append(r[0])
ratios = []
for f in formats:
    med = {}
    for tool in ("barman", "pg_basebackup"):
        runs = [r for r in rows if r[0] == f and r[1] == tool]
        m = [statistics.median(float(r[i]) for r in runs) for i in (2, 3, 4, 5)]
        med[tool] = m
        print(f"{f:<7}{tool:<15}{m[0]:>9.2f}{m[1]:>9.2f}{m[2]/1024:>10.1f}{m[3]/2**20:>10.1f}")
    b, p = med["barman"], med["pg_basebackup"]
    ratios.append((f, [bi / max(pi, 1e-9) for bi, pi in zip(b, p)]))
print("\nratio barman / pg_basebackup (below 1: barman used less):")
print(f"{'format':<7}{'wall':>8}{'cpu':>8}{'RSS':>8}{'size':>8}")
for f, r in ratios:
    print(f"{f:<7}" + "".join(f"{x:>8.2f}" for x in r))
PY
