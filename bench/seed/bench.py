"""bench/seed/bench.py: times jobq's job-pack kinds against the loops of loops.py.

Started by run.sh on a loaded database (gen.sql).  For each kind and each
repetition, on the same data reset the same way before every side:
  jobq (worker)  jobq.enqueue(kind, payload, max_attempts => 1), then poll
                 jobq.jobs until the job has finished; the job's time is
                 finished_at - started_at, its wall time finished_at - created_at
  jobq (direct)  SELECT jobq.<function>(payload) in one autocommit statement,
                 timed by the client
  loop           loops.py over the same local socket, autocommit, timed by the
                 client
Every side's result must equal the others' (the loops return the kinds'
result objects), and in the first repetition the rows each side wrote are
compared too.  Medians of the repetitions go to the table printed at the end
and written to results.md.  Exits 1 if any side failed or any result differed;
the table then says which, and results.md has the details.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import psycopg2
import psycopg2.extensions

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loops  # noqa: E402

TZ = 'Europe/Berlin'
SLOTS_PAYLOAD = {'start_date': '2025-03-05', 'end_date': '2025-05-03', 'timezone': TZ}
# the seed's daily run: the next 30 days (jobq's end_date is inclusive), the
# day after a run that covered all of them but the last
DAILY_PAYLOAD = {'start_date': '2025-03-05', 'end_date': '2025-04-04', 'timezone': TZ}
DAILY_BEFORE = {'start_date': '2025-03-04', 'end_date': '2025-04-03', 'timezone': TZ}
MONTH = '2025-03-01'


class CountingCursor(psycopg2.extensions.cursor):
    """Counts the statements a loop sends."""
    statements = 0

    def execute(self, query, vars=None):
        CountingCursor.statements += 1
        return super().execute(query, vars)


def q(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else None


def q1(conn, sql, args=None):
    rows = q(conn, sql, args)
    return rows[0][0] if rows else None


# ---------------------------------------------------------------- resets

def reset_slots(admin):
    q(admin, "TRUNCATE availability_slots RESTART IDENTITY")


def prepare_daily(admin):
    """Yesterday's run, kept in bench.daily_slots."""
    q(admin, "TRUNCATE availability_slots RESTART IDENTITY")
    q(admin, "SELECT jobq.slots_generate(%s)", (json.dumps(DAILY_BEFORE),))
    q(admin, "DROP TABLE IF EXISTS bench.daily_slots")
    q(admin, "CREATE TABLE bench.daily_slots AS TABLE availability_slots")


def reset_daily(admin):
    q(admin, "TRUNCATE availability_slots RESTART IDENTITY")
    q(admin, "INSERT INTO availability_slots SELECT * FROM bench.daily_slots")
    q(admin, "SELECT setval(pg_get_serial_sequence('availability_slots', 'id'),"
             " (SELECT max(id) FROM availability_slots))")
    q(admin, "VACUUM ANALYZE availability_slots")


def reset_release(admin):
    q(admin, "TRUNCATE availability_slots RESTART IDENTITY")
    q(admin, "INSERT INTO availability_slots SELECT * FROM bench.release_slots")
    q(admin, "VACUUM ANALYZE availability_slots")


def reset_aggregate(admin):
    q(admin, "TRUNCATE attendance_monthly")


def reset_thresholds(admin):
    q(admin, "TRUNCATE attendance_notices")


def prepare_thresholds(admin):
    """The month's rows of attendance_monthly, as attendance.aggregate leaves them."""
    if not q1(admin, "SELECT count(*) FROM attendance_monthly WHERE month = %s", (MONTH,)):
        q(admin, "SELECT jobq.attendance_aggregate(%s)", (json.dumps({'month': MONTH}),))
    q(admin, "VACUUM ANALYZE attendance_monthly")


def wait_notify_drained(admin, t0, timeout=300):
    """Waits until the notification jobs of a thresholds run have run; returns
    the milliseconds from t0 (perf_counter) until then."""
    deadline = time.time() + timeout
    while q1(admin, "SELECT count(*) FROM jobq.jobs WHERE kind = 'notify.noop'"
                    " AND status IN ('pending', 'running')"):
        if time.time() > deadline:
            raise RuntimeError("notify.noop jobs still pending after %d s" % timeout)
        time.sleep(0.01)
    return (time.perf_counter() - t0) * 1000


# ---------------------------------------------------------------- state snapshots

SNAPSHOTS = {
    'slots.generate daily': ("SELECT facility_id, doctor_id, starts_at, ends_at, status,"
                             " reserved_until FROM availability_slots"),
    'slots.generate': ("SELECT facility_id, doctor_id, starts_at, ends_at, status, reserved_until"
                       " FROM availability_slots"),
    'reservations.release': "SELECT id, status, reserved_until FROM availability_slots",
    'attendance.aggregate': "SELECT * FROM attendance_monthly",
    'attendance.thresholds': ("SELECT student_id, campus_id, month, threshold, rate,"
                              " job_id IS NOT NULL AS linked FROM attendance_notices"),
}
# the notification jobs a thresholds run enqueued: what the handler gets
NOTIFY_JOBS = ("SELECT payload, priority, job_key, status FROM jobq.jobs"
               " WHERE kind = 'notify.noop' AND id > %s")


def snapshot(admin, kind, name, after_id):
    q(admin, "DROP TABLE IF EXISTS bench.%s" % name)
    q(admin, "CREATE TABLE bench.%s AS %s" % (name, SNAPSHOTS[kind]))
    if kind == 'attendance.thresholds':
        q(admin, "DROP TABLE IF EXISTS bench.%s_jobs" % name)
        q(admin, ("CREATE TABLE bench.%s_jobs AS " % name) + NOTIFY_JOBS, (after_id,))


def diff(admin, a, b):
    """Rows in a and not in b, rows in b and not in a (as multisets)."""
    return (q1(admin, "SELECT count(*) FROM (TABLE bench.%s EXCEPT ALL TABLE bench.%s) x" % (a, b)),
            q1(admin, "SELECT count(*) FROM (TABLE bench.%s EXCEPT ALL TABLE bench.%s) x" % (b, a)))


# ---------------------------------------------------------------- the sides

def run_worker(admin, kind, payload, timeout=600):
    job = q1(admin, "SELECT jobq.enqueue(%s, %s, max_attempts => 1)", (kind, json.dumps(payload)))
    deadline = time.time() + timeout
    while True:
        row = q(admin, "SELECT status, result, last_error, last_error_sqlstate, last_error_context,"
                       " 1000 * extract(epoch FROM finished_at - started_at),"
                       " 1000 * extract(epoch FROM finished_at - created_at)"
                       " FROM jobq.jobs WHERE id = %s", (job,))[0]
        if row[0] in ('succeeded', 'dead', 'cancelled'):
            break
        if time.time() > deadline:
            raise RuntimeError("job %s of kind %s still %s after %d s" % (job, kind, row[0], timeout))
        time.sleep(0.02)
    status, result, err, sqlstate, context, job_ms, wall_ms = row
    if status != 'succeeded':
        return None, {'side': 'jobq worker', 'job_id': job, 'status': status, 'error': err,
                      'sqlstate': sqlstate, 'context': context}
    return (float(job_ms), float(wall_ms)), result


def run_direct(conn, function, payload):
    t0 = time.perf_counter()
    try:
        result = q1(conn, "SELECT %s(%%s)" % function, (json.dumps(payload),))
    except psycopg2.Error as e:
        return None, {'side': 'jobq direct', 'error': e.pgerror, 'sqlstate': e.pgcode,
                      'context': e.diag.context}
    return (time.perf_counter() - t0) * 1000, result


def run_loop(conn, kind, payload):
    CountingCursor.statements = 0
    t0 = time.perf_counter()
    try:
        result = loops.LOOPS[kind](conn, payload)
    except psycopg2.Error as e:
        return None, {'side': 'loop', 'error': e.pgerror, 'sqlstate': e.pgcode}, 0
    return (time.perf_counter() - t0) * 1000, result, CountingCursor.statements


def keep(results, side, res, label, payload, rep, problems):
    """Keeps a side's first result; a later repetition must return the same."""
    first = results.setdefault(side, res)
    if res != first:
        problems.append(dict(kind=label, payload=payload, rep=rep, side=side,
                             error='result differs between repetitions', results=[first, res]))


# ---------------------------------------------------------------- main

def machine(admin):
    cpu = '?'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    with open('/proc/meminfo') as f:
        mem_kb = int(f.readline().split()[1])
    settings = q(admin, "SELECT name, current_setting(name), '' FROM pg_settings WHERE name IN"
                        " ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_sync_method',"
                        " 'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'work_mem', 'TimeZone',"
                        " 'jobq.workers', 'jobq.batch_size', 'jit', 'wal_level') ORDER BY name")
    def md5(path):
        try:
            with open(path, 'rb') as f:
                return hashlib.md5(f.read()).hexdigest()[:12]
        except OSError:
            return 'missing'
    pg_config = '/usr/lib/postgresql/15/bin/pg_config'
    share = subprocess.run([pg_config, '--sharedir'], capture_output=True, text=True).stdout.strip()
    lib = subprocess.run([pg_config, '--pkglibdir'], capture_output=True, text=True).stdout.strip()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # the install script of the job pack's kinds, of the version its control file names
    with open(os.path.join(root, 'pack', 'jobq_pack.control')) as control:
        version = re.search(r"^default_version = '(.*)'$", control.read(), re.M).group(1)
    pack_script = 'jobq_pack--%s.sql' % version
    head = subprocess.run(['git', '-C', root, 'rev-parse', '--short', 'HEAD'],
                          capture_output=True, text=True).stdout.strip() or '?'
    return {
        'build': "installed %s md5 %s, jobq.so md5 %s; repository HEAD %s "
                 "(the kinds may be uncommitted work)" % (
                     pack_script, md5(os.path.join(share, 'extension', pack_script)),
                     md5(os.path.join(lib, 'jobq.so')), head),
        'nproc': os.cpu_count(),
        'mem': '%.1f GiB' % (mem_kb / 1048576),
        'cpu': cpu,
        'kernel': platform.release(),
        'pg': q1(admin, "SELECT version()"),
        'jobq': q1(admin, "SELECT extversion FROM pg_extension WHERE extname = 'jobq'"),
        'settings': settings,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', required=True)
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--dbname', default='bench')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--load-seconds', default='?')
    ap.add_argument('--out')
    ap.add_argument('--only', help='comma-separated kinds')
    args = ap.parse_args()

    load_start = open('/proc/loadavg').read().split()[:3]
    ps = subprocess.run(['ps', '-C', 'postgres', '-o', 'args='], capture_output=True, text=True).stdout
    other_servers = sum(1 for line in ps.splitlines() if ' -D ' in line and args.host not in line)
    dsn = dict(host=args.host, port=args.port, dbname=args.dbname, user='postgres',
               application_name='bench-seed')
    admin = psycopg2.connect(**dsn)
    admin.autocommit = True
    conn = psycopg2.connect(cursor_factory=CountingCursor, **dsn)
    conn.autocommit = True

    sizes = {
        'slots.generate': "%d doctors, %d facilities, %d active rules, %d exceptions; "
                          "60 days (2025-03-05..05-03, %s)" % (
            q1(admin, "SELECT count(DISTINCT doctor_id) FROM availability_rules"),
            q1(admin, "SELECT count(DISTINCT facility_id) FROM availability_rules"),
            q1(admin, "SELECT count(*) FROM availability_rules WHERE active"),
            q1(admin, "SELECT count(*) FROM availability_exceptions"), TZ),
        'reservations.release': "%d slots, %d reserved, %d of them expired" % tuple(q(admin,
            "SELECT count(*), count(*) FILTER (WHERE status = 'reserved'),"
            " count(*) FILTER (WHERE status = 'reserved' AND reserved_until < now())"
            " FROM bench.release_slots")[0]),
        'attendance.aggregate': "%d students, 5 campuses; month %s: %d of %d attendance rows" % (
            q1(admin, "SELECT count(DISTINCT student_id) FROM attendance WHERE day >= %s"
                      " AND day < %s::date + interval '1 month'", (MONTH, MONTH)), MONTH[:7],
            q1(admin, "SELECT count(*) FROM attendance WHERE day >= %s"
                      " AND day < %s::date + interval '1 month'", (MONTH, MONTH)),
            q1(admin, "SELECT count(*) FROM attendance")),
        'attendance.thresholds': "%d students' monthly rows (%s), no notices yet; "
                                 "notify kind: a no-op SQL function" % (
            q1(admin, "SELECT count(DISTINCT student_id) FROM attendance WHERE day >= %s"
                      " AND day < %s::date + interval '1 month'", (MONTH, MONTH)), MONTH[:7]),
    }
    sizes['slots.generate daily'] = ("the same rules; 31 days (2025-03-05..04-04), "
                                     "all but the last already generated the day before")
    kinds = [
        ('slots.generate', 'slots.generate', 'jobq.slots_generate', SLOTS_PAYLOAD,
         reset_slots, None),
        ('slots.generate daily', 'slots.generate', 'jobq.slots_generate', DAILY_PAYLOAD,
         reset_daily, prepare_daily),
        ('reservations.release', 'reservations.release', 'jobq.reservations_release', {},
         reset_release, None),
        ('attendance.aggregate', 'attendance.aggregate', 'jobq.attendance_aggregate',
         {'month': MONTH}, reset_aggregate, None),
        ('attendance.thresholds', 'attendance.thresholds', 'jobq.attendance_thresholds',
         {'month': MONTH, 'notify_kind': 'notify.noop', 'refresh': False},
         reset_thresholds, prepare_thresholds),
    ]
    if args.only:
        kinds = [k for k in kinds if k[0] in args.only.split(',')]

    report = []
    problems = []
    for label, kind, function, payload, reset, prepare in kinds:
        print("== %s %s" % (label, json.dumps(payload)), flush=True)
        if prepare:
            prepare(admin)
        job_ms, wall_ms, direct_ms, loop_ms = [], [], [], []
        drain_jobq, drain_loop = [], []
        results = {}
        stmts = 0
        checks = []
        failed = False
        for rep in range(1, args.reps + 1):
            is_thr = kind == 'attendance.thresholds'

            # jobq through a worker
            reset(admin)
            q(admin, "CHECKPOINT")
            before = q1(admin, "SELECT coalesce(max(id), 0) FROM jobq.jobs")
            t0 = time.perf_counter()
            t, res = run_worker(admin, kind, payload)
            if t is None:
                problems.append(dict(kind=label, payload=payload, rep=rep, **res))
                print("   rep %d worker FAILED: %s" % (rep, res), flush=True)
                failed = True
            else:
                job_ms.append(t[0])
                wall_ms.append(t[1])
                keep(results, 'jobq worker', res, label, payload, rep, problems)
                if is_thr:
                    drain_jobq.append(wait_notify_drained(admin, t0))
                if rep == 1:
                    snapshot(admin, label, 'cmp_jobq', before)

            # jobq, the function called directly
            reset(admin)
            q(admin, "CHECKPOINT")
            t, res = run_direct(conn, function, payload)
            if t is None:
                problems.append(dict(kind=label, payload=payload, rep=rep, **res))
                print("   rep %d direct FAILED: %s" % (rep, res), flush=True)
                failed = True
            else:
                direct_ms.append(t)
                keep(results, 'jobq direct', res, label, payload, rep, problems)
                if is_thr:
                    wait_notify_drained(admin, time.perf_counter())

            # the loop
            reset(admin)
            q(admin, "CHECKPOINT")
            before = q1(admin, "SELECT coalesce(max(id), 0) FROM jobq.jobs")
            t0 = time.perf_counter()
            t, res, n = run_loop(conn, kind, payload)
            if t is None:
                problems.append(dict(kind=label, payload=payload, rep=rep, **res))
                print("   rep %d loop FAILED: %s" % (rep, res), flush=True)
                failed = True
            else:
                loop_ms.append(t)
                stmts = n
                keep(results, 'loop', res, label, payload, rep, problems)
                if is_thr:
                    drain_loop.append(wait_notify_drained(admin, t0))
                if rep == 1:
                    snapshot(admin, label, 'cmp_loop', before)
                    if 'jobq worker' in results:
                        a, b = diff(admin, 'cmp_jobq', 'cmp_loop')
                        checks.append(('rows written', a, b))
                        if is_thr:
                            a, b = diff(admin, 'cmp_jobq_jobs', 'cmp_loop_jobs')
                            checks.append(('notification jobs', a, b))
            print("   rep %d: worker job %s ms, direct %s ms, loop %s ms" % (
                rep, '%.0f' % job_ms[-1] if len(job_ms) == rep else '-',
                '%.0f' % direct_ms[-1] if len(direct_ms) == rep else '-',
                '%.0f' % loop_ms[-1] if len(loop_ms) == rep else '-'), flush=True)

        distinct = {json.dumps(v, sort_keys=True) for v in results.values()}
        same = len(distinct) == 1 and len(results) == 3
        if len(distinct) > 1:
            problems.append(dict(kind=label, payload=payload, error='results differ',
                                 results=results))
        for what, a, b in checks:
            if a or b:
                problems.append(dict(kind=label, payload=payload,
                                     error='%s differ: %d rows only after jobq, %d only after the loop'
                                           % (what, a, b)))
                same = False
        med = lambda xs: statistics.median(xs) if xs else None
        row = dict(kind=label, size=sizes[label], payload=payload, job=med(job_ms), wall=med(wall_ms),
                   direct=med(direct_ms), loop=med(loop_ms), runs=(job_ms, wall_ms, direct_ms, loop_ms),
                   result=results.get('jobq worker') or results.get('jobq direct') or results.get('loop'),
                   statements=stmts, checks=checks,
                   same=same and not failed and not any(p['kind'] == label for p in problems),
                   drain=(med(drain_jobq), med(drain_loop), drain_jobq, drain_loop))
        report.append(row)
        print("   result %s; %s" % (json.dumps(row['result']),
                                   'all sides agree' if row['same'] else 'MISMATCH OR FAILURE'),
              flush=True)

    info = machine(admin)
    info['load'] = ("load average (1, 5, 15 min) when bench.py started %s, at its end %s; "
                    "other PostgreSQL servers running on the machine at the start: %d" % (
                        " ".join(load_start), " ".join(open('/proc/loadavg').read().split()[:3]),
                        other_servers))
    text = render(report, problems, info, args)
    print()
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 1 if problems else 0


def fmt(x):
    return '-' if x is None else ('%.0f' % x if x >= 10 else '%.1f' % x)


def render(report, problems, info, args):
    now = dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    out = ["# jobq job pack vs. row-by-row loops (bench/seed)", "",
           "Run %s by `bash bench/seed/run.sh`; medians of %d repetitions per side, "
           "milliseconds. Data: `gen.sql`, loaded in %s s." % (now, args.reps, args.load_seconds), "",
           "- **jobq job**: `finished_at - started_at` of the job in `jobq.jobs`, run by a worker",
           "- **jobq wall**: `finished_at - created_at`, from the enqueue to the end of the job",
           "- **direct**: `SELECT jobq.<function>(payload)` as one statement, timed by the client",
           "- **loop**: `loops.py`, one autocommit statement at a time over the local socket",
           "- **loop / job**: loop divided by jobq job", "",
           "| kind | data size | result | jobq job | jobq wall | direct | loop | loop / job | loop statements | same result |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in report:
        ratio = '-'
        if r['loop'] and r['job']:
            x = r['loop'] / r['job']
            ratio = ('%.1fx' if x < 10 else '%.0fx') % x
        res = json.dumps({k: v for k, v in (r['result'] or {}).items() if k != 'month'})
        out.append("| %s | %s | `%s` | %s | %s | %s | %s | %s | %s | %s |" % (
            r['kind'], r['size'], res, fmt(r['job']), fmt(r['wall']), fmt(r['direct']),
            fmt(r['loop']), ratio, '{:,}'.format(r['statements']) if r['statements'] else '-',
            'yes' if r['same'] else '**no**'))
    out.append("")
    for r in report:
        if r['kind'] == 'slots.generate':
            out += ["**slots.generate, 200 doctors x 60 days** (payload `%s`): %s; "
                    "jobq job %s ms, enqueue to finished %s ms, direct call %s ms; "
                    "the loop %s ms." % (json.dumps(r['payload']), json.dumps(r['result']),
                                         fmt(r['job']), fmt(r['wall']), fmt(r['direct']),
                                         fmt(r['loop'])), ""]
    for r in report:
        if r['kind'] == 'attendance.thresholds' and r['drain'][0] is not None:
            out += ["**attendance.thresholds until the notifications have run**: the %s notification "
                    "jobs (kind notify.noop, a no-op) run on jobq's 2 workers, after the thresholds "
                    "job commits, or while the loop is still going (each enqueue commits on its "
                    "own). From the enqueue of the thresholds job, or the start of the loop, until "
                    "none is pending or running (polled every 10 ms), median: jobq %s ms, loop %s ms "
                    "(jobq: %s; loop: %s)." % (
                        '{:,}'.format((r['result'] or {}).get('notified', 0)),
                        fmt(r['drain'][0]), fmt(r['drain'][1]),
                        ", ".join(fmt(x) for x in r['drain'][2]),
                        ", ".join(fmt(x) for x in r['drain'][3])), ""]
    out += ["Each repetition (jobq job / jobq wall / direct / loop, ms):", ""]
    for r in report:
        out.append("- %s: %s" % (r['kind'], "; ".join(
            "/".join(fmt(v[i]) if i < len(v) else '-' for v in r['runs'])
            for i in range(args.reps))))
    out += ["", "Payloads: " + "; ".join("%s `%s`" % (r['kind'], json.dumps(r['payload']))
                                      for r in report) + ".", "",
            "Checks in the first repetition: the rows each side wrote (slots: facility, doctor, "
            "times, status; release: every slot's status and reserved_until; aggregate: every "
            "column of attendance_monthly; thresholds: the notices and the notification jobs' "
            "payload, priority and job_key) compared as multisets; rule_id and service_id of "
            "slots are left out, because which of two identical rules fills a slot is arbitrary.",
            ""]
    for r in report:
        for what, a, b in r['checks']:
            out.append("- %s, %s: %d rows only after jobq, %d only after the loop" % (
                r['kind'], what, a, b))
    out += ["", "## Problems", ""]
    if problems:
        for p in problems:
            out.append("- " + json.dumps(p, default=str))
    else:
        out.append("None: every side succeeded and all results and rows agreed.")
    out += ["", "## Machine and server", "",
            "- CPUs (nproc): %s; memory: %s; CPU: %s; kernel %s" % (
                info['nproc'], info['mem'], info['cpu'], info['kernel']),
            "- %s" % info['load'],
            "- %s" % info['pg'],
            "- jobq %s, 2 workers in the database; %s" % (info['jobq'], info['build']),
            "- settings: " + ", ".join("%s = %s%s" % s for s in info['settings']),
            "- the loops' client: %s with psycopg2 %s, Unix socket, autocommit" % (
                "Python " + platform.python_version(), psycopg2.__version__.split()[0]),
            ""]
    return "\n".join(out)


if __name__ == '__main__':
    sys.exit(main())
