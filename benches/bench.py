#!/usr/bin/env python3
"""The side-by-side benchmark that scripts/bench runs (see there for the set-up).

One throwaway PostgreSQL cluster with pgbench data; every comparison runs its sides
alternately (A B A B ...) RUNS times and reports, per side, the median and min-max of
wall time, client CPU time (user+sys of the process and its children, /usr/bin/time),
peak RSS and output size, and per pair the ratio ours / theirs (below 1: ours used less).

Sections:
  backup     barman backup against pg_basebackup (plain, zstd tar), pgbackrest backup
             (full, zstd, process-max 1 and 2) and Barman's backup (postgres method)
  wal        receive-wal against pg_receivewal under the same pgbench load, one at a time:
             CPU per GiB of WAL, flush lag when the load stops, pgbench tps
  recover    restore against tar -x / zstd -dc | tar -x of the same backup, pgbackrest
             restore and Barman's recover
  catalogue  list-backups, show-backup and cron on a synthetic catalogue of 1,000 backups
             and 200,000 WAL files, against Barman on the same catalogue

Only the standard library; run it through scripts/bench.
"""

import argparse
import datetime
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.geteuid() == 0


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_pg(cmd):
    """A command line run as the postgres OS user when we are root."""
    return (["runuser", "-u", "postgres", "--"] + cmd) if ROOT else cmd


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and r.returncode != 0:
        raise SystemExit(f"bench: failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r


def du(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class Sample:
    def __init__(self, wall, cpu, rss_kib, size=None, stopped=False):
        self.wall, self.cpu, self.rss, self.size = wall, cpu, rss_kib, size
        # Stopped at the time limit: wall is a lower bound, cpu and rss unknown.
        self.stopped = stopped


def timed(cmd, sync=True, limit=None):
    """Run cmd under /usr/bin/time (plus a sync when it writes to disk); a Sample.
    After `limit` seconds the command is stopped and the sample marked so."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        if sync:
            run(["sync"])
        start = time.monotonic()
        try:
            r = subprocess.run(
                ["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name] + cmd,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return Sample(float(limit), None, None, stopped=True)
        if sync:
            run(["sync"])
        wall = time.monotonic() - start
        if r.returncode != 0:
            raise SystemExit(f"bench: failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
        u, s, m = tf.read().split()[-3:]
        return Sample(wall, float(u) + float(s), int(m))


class Results:
    def __init__(self):
        self.samples = {}  # (section, label) -> [Sample]
        self.pairs = []  # (section, ours, theirs, goal)
        self.notes = []

    def add(self, section, label, sample):
        self.samples.setdefault((section, label), []).append(sample)

    def pair(self, section, ours, theirs, goal=""):
        if (section, ours, theirs, goal) not in self.pairs:
            self.pairs.append((section, ours, theirs, goal))

    def med(self, section, label, attr):
        xs = [getattr(s, attr) for s in self.samples.get((section, label), []) if getattr(s, attr) is not None]
        return statistics.median(xs) if xs else None

    def stopped(self, section, label):
        return any(s.stopped for s in self.samples.get((section, label), []))

    def table(self):
        out = []
        sections = []
        for (section, _label) in self.samples:
            if section not in sections:
                sections.append(section)
        for section in sections:
            out.append(f"\n### {section}\n")
            out.append("| side | runs | wall s (min-max) | CPU s | peak RSS MiB | output MiB |")
            out.append("|---|---|---|---|---|---|")
            for (sec, label), xs in self.samples.items():
                if sec != section:
                    continue
                walls = [x.wall for x in xs if x.wall is not None]
                cpus = [x.cpu for x in xs if x.cpu is not None]
                rsss = [x.rss for x in xs if x.rss is not None]
                cpu = f"{statistics.median(cpus):.2f}" if cpus else ""
                rss = f"{statistics.median(rsss) / 1024:.1f}" if rsss else ""
                sizes = [x.size for x in xs if x.size is not None]
                size = f"{statistics.median(sizes) / 2**20:.1f}" if sizes else ""
                wall = f"{statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f})" if walls else ""
                if any(x.stopped for x in xs):
                    wall = f">= {min(walls):.0f} (stopped at the limit)"
                out.append(f"| {label} | {len(xs)} | {wall} | {cpu} | {rss} | {size} |")
            rows = [p for p in self.pairs if p[0] == section]
            if rows:
                out.append("")
                out.append("| ours / theirs | wall | CPU | RSS | size | goal |")
                out.append("|---|---|---|---|---|---|")
                for _sec, ours, theirs, goal in rows:
                    cells = []
                    for attr in ("wall", "cpu", "rss", "size"):
                        a, b = self.med(section, ours, attr), self.med(section, theirs, attr)
                        bound = "<= " if attr == "wall" and self.stopped(section, theirs) else ""
                        cells.append(f"{bound}{a / b:.3g}" if a is not None and b else "")
                    out.append(f"| {ours} / {theirs} | " + " | ".join(cells) + f" | {goal} |")
        if self.notes:
            out.append("\nNotes:\n")
            out.extend(f"- {n}" for n in self.notes)
        return "\n".join(out)


class Cluster:
    def __init__(self, pgbin, scratch):
        self.pgbin, self.scratch = pgbin, scratch
        self.data = os.path.join(scratch, "data")
        self.port = free_port()
        run(as_pg([f"{pgbin}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-N"]))
        self.conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def configure(self, archive_command):
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            f.write(f"""
listen_addresses = '127.0.0.1'
port = {self.port}
unix_socket_directories = '{self.scratch}'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
max_wal_size = 4GB
synchronous_commit = off
archive_mode = on
archive_command = '{archive_command}'
""")

    def start(self):
        run(as_pg([f"{self.pgbin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.scratch, "server.log"), "-w", "start"]))

    def stop(self):
        run(as_pg([f"{self.pgbin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"]), check=False)

    def sql(self, q):
        return run([f"{self.pgbin}/psql", "-XAtq", "-d", self.conninfo, "-c", q]).stdout.strip()

    def quiesce(self, timeout=600):
        """Wait until the archiver has every finished segment and the checkpoint's writes
        are on disk, so that neither runs in the background of a timed command."""
        self.sql("checkpoint")
        status = os.path.join(self.data, "pg_wal", "archive_status")
        deadline = time.monotonic() + timeout
        while any(n.endswith(".ready") for n in os.listdir(status)):
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the archiver did not catch up in {timeout} s")
            time.sleep(0.5)
        run(["sync"])

    def pgbench(self, *args):
        return run([f"{self.pgbin}/pgbench", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", *args, "postgres"]).stdout


def ours_conf(path, home, cluster, extra_servers=""):
    with open(path, "w") as f:
        f.write(f"""[barman]
barman_home = {home}
barman_user = {pwd.getpwuid(os.geteuid()).pw_name}
log_file = {home}/barman.log
[plain]
conninfo = {cluster.conninfo}
backup_method = postgres
archiver = on
immediate_checkpoint = true
[zstd]
conninfo = {cluster.conninfo}
backup_method = postgres
archiver = on
immediate_checkpoint = true
backup_compression = zstd
backup_compression_format = tar
[lz4]
conninfo = {cluster.conninfo}
backup_method = postgres
archiver = on
immediate_checkpoint = true
backup_compression = lz4
backup_compression_format = tar
[stream]
conninfo = {cluster.conninfo}
backup_method = postgres
streaming_archiver = on
slot_name = barman
{extra_servers}""")


def newest_backup(home, server):
    base = os.path.join(home, server, "base")
    ids = sorted(os.listdir(base)) if os.path.isdir(base) else []
    return ids[-1] if ids else None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--barman", required=True, help="our binary")
    p.add_argument("--pgbin", required=True, help="PostgreSQL 15 bin directory")
    p.add_argument("--pybarman", help="Barman's (Python) barman, if installed")
    p.add_argument("--pgbackrest", help="pgbackrest, if installed")
    p.add_argument("--scale", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--wal-seconds", type=int, default=60)
    p.add_argument("--wal-files", type=int, default=200000)
    p.add_argument("--backups", type=int, default=1000)
    p.add_argument("--sections", default="backup,wal,recover,catalogue")
    p.add_argument("--their-limit", type=float, default=900,
                   help="stop another tool's catalogue command after this many seconds")
    p.add_argument("--out", help="write the results (Markdown) here")
    a = p.parse_args()
    sections = a.sections.split(",")
    res = Results()

    scratch = tempfile.mkdtemp(prefix="barman-bench.")
    os.chmod(scratch, 0o755)
    if ROOT:
        pw = pwd.getpwnam("postgres")
        os.chown(scratch, pw.pw_uid, pw.pw_gid)
    home = os.path.join(scratch, "home")
    pyhome = os.path.join(scratch, "pyhome")
    for d in (home, pyhome):
        for server in ("plain", "zstd", "lz4", "pg"):
            os.makedirs(os.path.join(d, server, "incoming"), exist_ok=True)
            os.chmod(os.path.join(d, server, "incoming"), 0o777)
        os.chmod(d, 0o755)
        for server in ("plain", "zstd", "lz4", "pg"):
            os.chmod(os.path.join(d, server), 0o755)
    cluster = Cluster(a.pgbin, scratch)
    brconf = os.path.join(scratch, "pgbackrest.conf")
    archive = [f"cp %p {home}/{server}/incoming/%f" for server in ("plain", "zstd", "lz4")]
    archive.append(f"cp %p {pyhome}/pg/incoming/%f")
    if a.pgbackrest:
        os.makedirs(os.path.join(scratch, "pgbackrest"), exist_ok=True)
        with open(brconf, "w") as f:
            f.write(f"""[global]
repo1-path={scratch}/pgbackrest/repo
repo1-retention-full=1000
start-fast=y
log-level-console=warn
log-level-file=off
lock-path={scratch}/pgbackrest/lock
spool-path={scratch}/pgbackrest/spool
compress-type=zst
[bench]
pg1-path={cluster.data}
pg1-port={cluster.port}
pg1-socket-path={scratch}
""")
        os.chmod(brconf, 0o644)
        if ROOT:
            run(["chown", "-R", "postgres:", os.path.join(scratch, "pgbackrest")])
        archive.append(f"{a.pgbackrest} --config={brconf} --stanza=bench archive-push %p")
    cluster.configure(" && ".join(archive))
    cluster.start()
    conf = os.path.join(scratch, "barman.conf")
    ours_conf(conf, home, cluster)
    pyconf = os.path.join(scratch, "pybarman.conf")
    with open(pyconf, "w") as f:
        f.write(f"""[barman]
barman_home = {pyhome}
barman_user = {pwd.getpwuid(os.geteuid()).pw_name}
log_file = {pyhome}/barman.log
[pg]
conninfo = {cluster.conninfo}
backup_method = postgres
archiver = on
immediate_checkpoint = true
path_prefix = {a.pgbin}
""")
    ours = lambda *args: [a.barman, "-q", "-c", conf, *args]
    py = (lambda *args: [a.pybarman, "-q", "-c", pyconf, *args]) if a.pybarman else None
    br = (lambda *args: as_pg([a.pgbackrest, f"--config={brconf}", "--stanza=bench", *args])) if a.pgbackrest else None
    try:
        log(f"pgbench -i -s {a.scale}")
        cluster.pgbench("-i", "-q", "-s", str(a.scale))
        size = int(cluster.sql("select sum(pg_database_size(oid)) from pg_database"))
        res.notes.append(f"pgbench scale {a.scale}: {size / 2**20:.0f} MiB of data, {a.runs} run(s) per side, "
                         f"machine: {os.cpu_count()} cores, {os.uname().release}")
        if br:
            run(br("stanza-create"))
        log("waiting for the archiver to catch up")
        cluster.quiesce()
        if "backup" in sections:
            bench_backup(a, res, cluster, home, pyhome, scratch, ours, py, br)
        if "recover" in sections:
            bench_recover(a, res, cluster, home, pyhome, scratch, ours, py, br)
        if "wal" in sections:
            bench_wal(a, res, cluster, home, scratch, ours)
        if "catalogue" in sections:
            bench_catalogue(a, res, cluster, scratch)
    finally:
        cluster.stop()
        if os.environ.get("KEEP"):
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    text = res.table()
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


def bench_backup(a, res, cluster, home, pyhome, scratch, ours, py, br):
    S = "base backup"
    pbb = os.path.join(a.pgbin, "pg_basebackup")
    # pg_basebackup fsyncs what it wrote, as Barman runs it and as we do: with --no-sync
    # that work would move to timed()'s sync and out of its CPU time.
    common = ["-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "-c", "fast", "-X", "none",
              "--manifest-checksums=CRC32C"]
    # A server's first backup also removes the WAL archived before it (Barman does the
    # same): a one-off, and slow on a disk that discards on unlink (about 20 ms per 16 MB
    # segment here). One untimed backup per server first, kept, so that every timed backup
    # is a routine one, as a nightly backup is.
    log("base backup: one untimed first backup per server")
    for server in ("plain", "zstd", "lz4"):
        run(ours("archive-wal", server))
        run(ours("backup", server))
    if py:
        run(py("archive-wal", "pg"))
        run(py("backup", "pg"))
    # Every timed backup starts on a quiet server: the archiver done with the WAL of the
    # command before (five archives, one of them pgBackRest compressing each segment,
    # would otherwise share the two cores with whichever backup comes next).
    for i in range(a.runs):
        log(f"base backup: run {i + 1} of {a.runs}")
        for server, label, theirs_label, theirs_args in (
            ("plain", "barman backup (plain)", "pg_basebackup -Fp", ["-Fp"]),
            ("zstd", "barman backup (zstd tar)", "pg_basebackup -Ft client-zstd", ["-Ft", "--compress=client-zstd"]),
            # Barman has no uncompressed tar format: lz4 is the nearest to -Ft.
            ("lz4", "barman backup (lz4 tar)", "pg_basebackup -Ft client-lz4", ["-Ft", "--compress=client-lz4"]),
        ):
            # Like Barman's, our backup ends by archiving the WAL waiting in incoming/;
            # the backlog of earlier runs is archived first, untimed, so that only the
            # backup's own WAL is in the measurement.
            cluster.quiesce()
            run(ours("archive-wal", server))
            s = timed(ours("backup", server))
            bid = newest_backup(home, server)
            s.size = du(os.path.join(home, server, "base", bid))
            res.add(S, label, s)
            if i + 1 < a.runs:
                run(ours("delete", server, bid))
            dest = os.path.join(scratch, "pgbb")
            cluster.quiesce()
            s = timed([pbb, "-D", dest] + theirs_args + common)
            s.size = du(dest)
            res.add(S, theirs_label, s)
            shutil.rmtree(dest)
            goal = {"plain": "<= 1.0", "lz4": "wall <= 1.0 (as for -Ft)"}.get(
                server, "wall <= 0.67 (1.5x faster), size <= 1.0")
            res.pair(S, label, theirs_label, goal)
        if br:
            for procs in (1, 2):
                label = f"pgbackrest full zstd process-max {procs}"
                before = du(os.path.join(scratch, "pgbackrest", "repo", "backup"))
                cluster.quiesce()
                s = timed(br("backup", "--type=full", f"--process-max={procs}"))
                s.size = du(os.path.join(scratch, "pgbackrest", "repo", "backup")) - before
                res.add(S, label, s)
                res.pair(S, "barman backup (zstd tar)", label)
        if py:
            cluster.quiesce()
            run(py("archive-wal", "pg"))
            s = timed(py("backup", "pg"))
            bid = newest_backup(pyhome, "pg")
            s.size = du(os.path.join(pyhome, "pg", "base", bid))
            res.add(S, "Barman backup (postgres method)", s)
            if i + 1 < a.runs:
                run(py("delete", "pg", bid))
            res.pair(S, "barman backup (plain)", "Barman backup (postgres method)")


def bench_recover(a, res, cluster, home, pyhome, scratch, ours, py, br):
    S = "recovery"
    # Every backup's WAL in the archives, so that each tool restores a complete backup.
    cluster.sql("select pg_switch_wal()")
    time.sleep(2)
    for server in ("plain", "zstd"):
        if newest_backup(home, server) is None:
            run(ours("backup", server))
        run(ours("archive-wal", server))
    if py:
        if newest_backup(pyhome, "pg") is None:
            run(py("backup", "pg"))
        run(py("archive-wal", "pg"))
    plain_id = newest_backup(home, "plain")
    zstd_id = newest_backup(home, "zstd")
    tarball = os.path.join(scratch, "base.tar")
    run(["tar", "-cf", tarball, "-C", os.path.join(home, "plain", "base", plain_id, "data"), "."])
    zst = os.path.join(home, "zstd", "base", zstd_id, "data", "base.tar.zst")
    dest = os.path.join(scratch, "dest")

    # Each tool restores its newest backup and the WAL up to that backup's end: to the end
    # of the archive, the backup taken first in the last round would carry every later
    # backup's WAL switches (about 200 MB more than the one taken last).
    to_end = ["--target-immediate"]

    def fresh(owner_pg=False):
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        if owner_pg and ROOT:
            run(["chown", "postgres:", dest])
            os.chmod(dest, 0o700)

    cluster.quiesce()
    for i in range(a.runs):
        log(f"recovery: run {i + 1} of {a.runs}")
        fresh()
        res.add(S, "barman restore (plain)", timed(ours("restore", *to_end, "plain", "latest", dest)))
        fresh()
        res.add(S, "tar -xf", timed(["tar", "-xf", tarball, "-C", dest]))
        res.pair(S, "barman restore (plain)", "tar -xf", "<= 1.2")
        fresh()
        res.add(S, "barman restore (zstd tar)", timed(ours("restore", *to_end, "zstd", "latest", dest)))
        fresh()
        res.add(S, "zstd -dc | tar -xf", timed(["sh", "-c", f"zstd -dc '{zst}' | tar -xf - -C '{dest}'"]))
        res.pair(S, "barman restore (zstd tar)", "zstd -dc | tar -xf")
        if br:
            for procs in (1, 2):
                fresh(owner_pg=True)
                label = f"pgbackrest restore process-max {procs}"
                res.add(S, label, timed(br("restore", f"--pg1-path={dest}", f"--process-max={procs}")))
                res.pair(S, "barman restore (zstd tar)", label)
        if py:
            fresh()
            res.add(S, "Barman recover", timed(py("recover", *to_end, "pg", "latest", dest)))
            res.pair(S, "barman restore (plain)", "Barman recover", "<= 0.5 (2x faster)")
            # The same with two workers on each side: our copy threads, Barman's rsyncs.
            fresh()
            res.add(S, "barman restore -j 2 (plain)", timed(ours("restore", "-j", "2", *to_end, "plain", "latest", dest)))
            fresh()
            res.add(S, "Barman recover --jobs 2", timed(py("recover", "--jobs", "2", *to_end, "pg", "latest", dest)))
            res.pair(S, "barman restore -j 2 (plain)", "Barman recover --jobs 2", "<= 0.5 (2x faster)")
    shutil.rmtree(dest, ignore_errors=True)


def bench_wal(a, res, cluster, home, scratch, ours):
    S = "WAL streaming"
    receivewal = os.path.join(a.pgbin, "pg_receivewal")
    pgrw_dir = os.path.join(scratch, "pgrw")
    os.makedirs(pgrw_dir, exist_ok=True)
    # What archive_command does is not measured here, and minutes of pgbench's WAL copied
    # into five archives would fill the disk: archiving is a no-op from now on.
    cluster.sql("alter system set archive_command = 'true'")
    cluster.sql("select pg_reload_conf()")
    run(ours("receive-wal", "--create-slot", "stream"))
    cluster.sql("select pg_create_physical_replication_slot('pgrw', true)")
    clients = 4
    tps_re = re.compile(r"tps = ([0-9.]+)")

    def load():
        out = cluster.pgbench("-T", str(a.wal_seconds), "-c", str(clients), "-j", "2", "-n")
        m = tps_re.search(out)
        return float(m.group(1)) if m else 0.0

    def phase(label, cmd, app):
        # Each side starts right after a checkpoint, so that both stream the same mix of
        # full-page images and small records (the first minutes after a checkpoint
        # write several times more WAL for the same transactions).
        cluster.sql("checkpoint")
        start_lsn = cluster.sql("select pg_current_wal_lsn()")
        with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
            proc = subprocess.Popen(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name] + cmd,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 30
            while cluster.sql(f"select count(*) from pg_stat_replication where application_name = '{app}' and state = 'streaming'") != "1":
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench: {label} did not start streaming: {proc.stderr.read()}")
                time.sleep(0.1)
            tps = load()
            lag = int(float(cluster.sql(
                f"select coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn), 0) from pg_stat_replication where application_name = '{app}'") or 0))
            end_lsn = cluster.sql("select pg_current_wal_lsn()")
            time.sleep(2)
            child = run(["pgrep", "-P", str(proc.pid)], check=False).stdout.split()
            for pid in child:
                os.kill(int(pid), 2)
            proc.wait(timeout=60)
            u, s, m = tf.read().split()[-3:]
        wal = int(float(cluster.sql(f"select pg_wal_lsn_diff('{end_lsn}', '{start_lsn}')")))
        # In this section the CPU column is seconds per GiB of WAL streamed (the sides
        # stream different amounts in the same time), and there is no wall time.
        sample = Sample(None, (float(u) + float(s)) / (wal / 2**30), int(m))
        res.add(S, label, sample)
        return sample, wal, tps, lag

    per_gib = {}
    for i in range(a.runs):
        log(f"WAL streaming: run {i + 1} of {a.runs} ({a.wal_seconds} s of pgbench per side)")
        for label, cmd, app in (
            ("barman receive-wal", ours("receive-wal", "stream"), "barman_receive_wal"),
            ("pg_receivewal", [receivewal, "-D", pgrw_dir, "--slot", "pgrw", "-n", "-d",
                               f"{cluster.conninfo} application_name=pg_receivewal"], "pg_receivewal"),
        ):
            sample, wal, tps, lag = phase(label, cmd, app)
            per_gib.setdefault(label, []).append((sample.cpu, tps, lag, wal))
            # The streamed files are not needed afterwards.
            for d in (pgrw_dir, os.path.join(home, "stream", "streaming")):
                for f in os.listdir(d) if os.path.isdir(d) else []:
                    if not f.endswith(".partial"):
                        os.unlink(os.path.join(d, f))
        res.pair(S, "barman receive-wal", "pg_receivewal", "CPU <= 1.0")
    for label, xs in per_gib.items():
        res.notes.append(
            f"{label}: CPU {statistics.median(x[0] for x in xs):.2f} s per GiB of WAL, "
            f"pgbench {statistics.median(x[1] for x in xs):.0f} tps, flush lag when the load stopped "
            f"{statistics.median(x[2] for x in xs) / 2**20:.2f} MiB (median of {len(xs)}; "
            f"{statistics.median(x[3] for x in xs) / 2**20:.0f} MiB of WAL per run)")
    res.notes.append("WAL streaming: the CPU column is seconds per GiB of WAL streamed; each side streams "
                     "alone during the same load for the same time.")


def bench_catalogue(a, res, cluster, scratch):
    S = "catalogue scale"
    home = os.path.join(scratch, "cathome")
    server = os.path.join(home, "cat")
    for d in ("meta", "base", "wals", "incoming", "streaming", "errors"):
        os.makedirs(os.path.join(server, d), exist_ok=True)
    per_backup = max(1, a.wal_files // a.backups)
    segsize = 16 << 20
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    log(f"catalogue: writing {a.backups} backups and {a.wal_files} WAL entries")

    def name(segno):
        return f"00000001{segno // 256:08X}{segno % 256:08X}"

    with open(os.path.join(server, "wals", "cat-xlog.db"), "w") as db:
        for segno in range(1, a.wal_files + 1):
            t = (start + datetime.timedelta(seconds=segno * 60)).timestamp()
            db.write(f"{name(segno)}\t{segsize}\t{t}\tgzip\tNone\n")
    for k in range(a.backups):
        segno = 1 + k * per_backup
        begin = start + datetime.timedelta(seconds=segno * 60)
        end = begin + datetime.timedelta(seconds=30)
        bid = begin.strftime("%Y%m%dT%H%M%S")
        lsn = segno * segsize
        with open(os.path.join(server, "meta", f"{bid}-backup.info"), "w") as f:
            f.write(f"""backup_id={bid}
backup_label=None
backup_name=None
begin_offset=40
begin_time={begin.isoformat(' ')}
begin_wal={name(segno)}
begin_xlog={lsn >> 32:X}/{(lsn & 0xffffffff) + 40:X}
compression=None
config_file=/pg/postgresql.conf
copy_stats={{'copy_time': 30.0, 'total_time': 31.0}}
deduplicated_size=1610612736
end_offset=256
end_time={end.isoformat(' ')}
end_wal={name(segno)}
end_xlog={lsn >> 32:X}/{(lsn & 0xffffffff) + 256:X}
error=None
hba_file=/pg/pg_hba.conf
ident_file=/pg/pg_ident.conf
included_files=None
mode=postgres
pgdata=/pg
server_name=cat
size=1610612736
status=DONE
systemid=7000000000000000000
tablespaces=None
timeline=1
version=150000
xlog_segment_size={segsize}
""")
    catconf = os.path.join(scratch, "catalogue.conf")
    with open(catconf, "w") as f:
        f.write(f"""[barman]
barman_home = {home}
barman_user = {pwd.getpwuid(os.geteuid()).pw_name}
log_file = {home}/barman.log
[cat]
conninfo = {cluster.conninfo}
backup_method = postgres
archiver = on
""")
    newest = sorted(os.listdir(os.path.join(server, "meta")))[-1].split("-")[0]
    sides = [("barman", [a.barman, "-q", "-c", catconf])]
    if a.pybarman:
        sides.append(("Barman", [a.pybarman, "-q", "-c", catconf]))
    for i in range(a.runs):
        log(f"catalogue: run {i + 1} of {a.runs}")
        for command in (["list-backups", "cat"], ["show-backup", "cat", newest], ["cron"]):
            for who, base in sides:
                label = f"{who} {' '.join(command[:1])}"
                limit = a.their_limit if who != "barman" else None
                res.add(S, label, timed(base + command, sync=False, limit=limit))
            if len(sides) == 2:
                res.pair(S, f"barman {command[0]}", f"Barman {command[0]}", "barman < 1 s")
    res.notes.append(f"catalogue scale: {a.backups} backups, {a.wal_files} WAL entries in xlog.db "
                     "(no WAL files on disk: every command here reads xlog.db, not the files)")


if __name__ == "__main__":
    main()
