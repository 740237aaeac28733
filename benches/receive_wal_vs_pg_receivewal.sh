#!/usr/bin/env bash
# barman receive-wal (native) against pg_receivewal, streaming the same PostgreSQL 15
# cluster under the same pgbench load at the same time, each on its own slot.
#
#   benches/receive_wal_vs_pg_receivewal.sh        # DURATION=60 SCALE=60 by default
#
# Prints the WAL streamed, each client's CPU time (user+sys) and peak RSS, their CPU
# per GiB and its ratio (barman / pg_receivewal; below 1 means barman used less), and
# how far each one is behind the server's current LSN when the load stops.
# Run as root (PostgreSQL then runs as the `postgres` user) or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-60}
scale=${SCALE:-60}

cargo build --release --quiet
barman="$(pwd)/target/release/barman"
bindir=$(BARMAN_PG_VERSIONS=15 bash scripts/install-postgres | awk '$1 == 15 { print $2 }')
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

scratch=$(mktemp -d /tmp/barman-rwbench.XXXXXX)
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
max_replication_slots = 10
max_wal_size = 4GB
synchronous_commit = off
CONF
"${as_pg[@]}" "$bindir/pg_ctl" -D "$data" -l "$scratch/server.log" -w start >/dev/null
conn="host=127.0.0.1 port=$port user=postgres"
sql() { "$bindir/psql" -XAtq -d "$conn dbname=postgres" -c "$1"; }
sql "select pg_create_physical_replication_slot('pgrw', true)" >/dev/null

mkdir -p "$scratch/home" "$scratch/pgrw"
cat > "$scratch/barman.conf" <<CONF
[barman]
barman_home = $scratch/home
barman_user = $(id -un)
log_file = $scratch/barman.log
[pg]
conninfo = $conn dbname=postgres
backup_method = postgres
streaming_archiver = on
slot_name = barman
CONF
"$barman" -q -c "$scratch/barman.conf" receive-wal --create-slot pg

start=$(sql "select pg_current_wal_lsn()")
/usr/bin/time -f "%U %S %M" -o "$scratch/time.barman" \
    "$barman" -q -c "$scratch/barman.conf" receive-wal pg 2>"$scratch/barman.err" &
barman_pid=$!
/usr/bin/time -f "%U %S %M" -o "$scratch/time.pgrw" \
    "$bindir/pg_receivewal" -D "$scratch/pgrw" --slot pgrw -d "$conn" -n 2>"$scratch/pgrw.err" &
pgrw_pid=$!
sleep 2
echo "pgbench -i -s $scale, then $duration s of pgbench -c 4 ..."
"$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -i -s "$scale" -q postgres >"$scratch/pgbench.out" 2>&1
"$bindir/pgbench" -h 127.0.0.1 -p "$port" -U postgres -T "$duration" -c 4 -j 2 postgres >>"$scratch/pgbench.out" 2>&1
end=$(sql "select pg_current_wal_lsn()")
lag=$(sql "select application_name || ' ' || pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) from pg_stat_replication order by 1")
sleep 3
# SIGINT to the clients themselves (children of /usr/bin/time): both stop cleanly on it.
kill -INT $(pgrep -P "$barman_pid") $(pgrep -P "$pgrw_pid") 2>/dev/null || true
wait "$barman_pid" "$pgrw_pid" || true
bytes=$(sql "select pg_wal_lsn_diff('$end', '$start')")

read -r bu bs bm < "$scratch/time.barman"
read -r pu ps pm < "$scratch/time.pgrw"
python3 - "$bytes" "$bu" "$bs" "$bm" "$pu" "$ps" "$pm" "$lag" <<'PY'
import sys
b = float(sys.argv[1]); gib = b / 2**30
bu, bs, bm, pu, ps, pm = map(float, sys.argv[2:8])
print(f"WAL streamed: {b/2**20:.0f} MiB")
print(f"barman receive-wal: cpu {bu+bs:.2f} s ({(bu+bs)/gib:.2f} s/GiB), peak RSS {bm/1024:.1f} MiB")
print(f"pg_receivewal:      cpu {pu+ps:.2f} s ({(pu+ps)/gib:.2f} s/GiB), peak RSS {pm/1024:.1f} MiB")
print(f"CPU ratio barman / pg_receivewal: {(bu+bs)/max(pu+ps, 1e-9):.2f}")
print("flush lag when the load stopped (bytes):")
for line in sys.argv[8].splitlines():
    print("  " + line)
PY
