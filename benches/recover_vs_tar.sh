#!/usr/bin/env bash
# barman restore against plain extraction of the same backup, on one PostgreSQL 15
# cluster of pgbench scale SCALE (default 100, about 1.5 GB).
#
#   benches/recover_vs_tar.sh                 # SCALE=100 RUNS=3 by default
#   SCALE=10 RUNS=1 benches/recover_vs_tar.sh # a smoke run
#
# Two backups are taken by `barman backup`: plain (a data directory) and zstd tar
# (base.tar.zst). Then, alternately (A B A B ...), RUNS times each:
#   - plain: `barman restore` (to the end of the backup, WAL copied into pg_wal)
#     against `tar -xf` of a tar of the same data directory;
#   - zstd:  `barman restore` of the zstd backup against `zstd -dc base.tar.zst | tar -xf -`.
#   - and, where Barman (Python) is installed, its `barman recover` of the same plain
#     backup: BARMAN_PY names its `barman` (default: the virtual environment that
#     scripts/bench installs, /var/cache/barman-rs/barman-venv/bin/barman); it reads our
#     catalogue and needs rsync. Goal (issue 7): at least 2x faster than Barman.
# Each timing includes a final `sync`, so both sides are measured to the disk. Prints the
# median and min-max wall time per side and the ratio (barman / baseline; below 1 means
# barman was faster). The goal (issue 7) is a ratio within 1.2 for plain extraction.
# KEEP=1 leaves the scratch directory (cluster stopped) for a closer look.
# Run as root (PostgreSQL then runs as the `postgres` user) or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
scale=${SCALE:-100}
runs=${RUNS:-3}

cargo build --release --quiet
barman="$(pwd)/target/release/barman"
bindir=$(BARMAN_PG_VERSIONS=15 bash scripts/install-postgres | awk '$1 == 15 { print $2 }')
command -v zstd >/dev/null || { echo "needs zstd (apt-get install zstd)" >&2; exit 1; }
pybarman=${BARMAN_PY:-/var/cache/barman-rs/barman-venv/bin/barman}
if [ -x "$pybarman" ] && command -v rsync >/dev/null; then
    echo "comparing with $("$pybarman" --version 2>&1 | head -1)"
else
    echo "Barman (Python) or rsync not found: no comparison with barman recover (see BARMAN_PY)"
    pybarman=
fi

scratch=$(mktemp -d /tmp/barman-recbench.XXXXXX)
chmod 755 "$scratch"
if [ "$(id -u)" -eq 0 ]; then as_pg=(runuser -u postgres --); chown postgres: "$scratch"; else as_pg=(); fi
data="$scratch/data"
cleanup() {
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    if [ -n "${KEEP:-}" ]; then echo "kept $scratch (KEEP is set)"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT

home="$scratch/home"
mkdir -p "$home/pg/incoming" "$home/pgz/incoming"
chmod 755 "$home" "$home/pg" "$home/pgz"
chmod 777 "$home/pg/incoming" "$home/pgz/incoming"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust -N >/dev/null
"${as_pg[@]}" sh -c "cat >> '$data/postgresql.conf'" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$scratch'
wal_level = replica
max_wal_senders = 10
max_wal_size = 4GB
archive_mode = on
archive_command = 'cp %p $home/pg/incoming/%f && cp %p $home/pgz/incoming/%f'
CONF
"${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -l "$scratch/server.log" -w start >/dev/null
conn="host=127.0.0.1 port=$port user=postgres dbname=postgres"

cat > "$scratch/barman.conf" <<CONF
[barman]
barman_home = $home
barman_user = $(id -un)
log_file = $scratch/barman.log
[pg]
conninfo = $conn
backup_method = postgres
archiver = on
immediate_checkpoint = true
[pgz]
conninfo = $conn
backup_method = postgres
archiver = on
immediate_checkpoint = true
backup_compression = zstd
backup_compression_format = tar
CONF
b() { "$barman" -q -c "$scratch/barman.conf" "$@"; }

echo "pgbench -i -s $scale ..."
"$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s "$scale" -q postgres >"$scratch/pgbench.out" 2>&1
b backup --wait pg
b backup --wait pgz
id=$(ls "$home/pg/base")
idz=$(ls "$home/pgz/base")
size=$(du -sb "$home/pg/base/$id/data" | cut -f1)
echo "backup: $((size / 1024 / 1024)) MiB of data; zstd tar: $(($(du -sb "$home/pgz/base/$idz" | cut -f1) / 1024 / 1024)) MiB"
# The baselines extract the same bytes: a tar of the plain backup, the zstd tar as stored.
tar -cf "$scratch/base.tar" -C "$home/pg/base/$id/data" .

timed() { # timed FILE COMMAND...: appends the wall time of COMMAND plus sync to FILE
    local out=$1; shift
    sync
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null
    sync
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >> "$out"
}
fresh() { rm -rf "$scratch/dest"; mkdir -p "$scratch/dest"; }
extract_plain() { tar -xf "$scratch/base.tar" -C "$scratch/dest"; }
extract_zstd() { zstd -dc "$home/pgz/base/$idz/data/base.tar.zst" | tar -xf - -C "$scratch/dest"; }
restore() { b restore "$1" latest "$scratch/dest"; }
py_recover() { "$pybarman" -q -c "$scratch/barman.conf" recover pg latest "$scratch/dest"; }

for i in $(seq "$runs"); do
    echo "run $i of $runs ..."
    fresh; timed "$scratch/t.tar" extract_plain
    fresh; timed "$scratch/t.barman" restore pg
    if [ -n "$pybarman" ]; then fresh; timed "$scratch/t.pybarman" py_recover; fi
    fresh; timed "$scratch/t.zstd" extract_zstd
    fresh; timed "$scratch/t.barmanz" restore pgz
done
rm -rf "$scratch/dest"

python3 - "$scratch" "$scale" "$size" <<'PY'
import statistics, sys
d, scale, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
def read(name):
    return [float(x) for x in open(f"{d}/{name}")]
def show(label, xs):
    return f"{label:<34} median {statistics.median(xs):6.2f} s  (min {min(xs):.2f}, max {max(xs):.2f})"
import os
pairs = [("plain", "t.barman", "t.tar", "tar -xf"),
         ("zstd tar", "t.barmanz", "t.zstd", "zstd -dc | tar -xf")]
if os.path.exists(f"{d}/t.pybarman"):
    pairs.append(("plain", "t.barman", "t.pybarman", "Barman (Python) recover"))
print(f"pgbench scale {scale}, {size / 2**20:.0f} MiB of data, {len(read('t.tar'))} runs each")
for kind, ours, base, base_label in pairs:
    a, b = read(ours), read(base)
    print(show(f"barman restore ({kind})", a))
    print(show(base_label, b))
    print(f"ratio barman / {base_label}: {statistics.median(a) / statistics.median(b):.2f}")
PY
