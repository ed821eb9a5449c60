"""bench/seed/loops.py: the seeds' row-by-row jobs, as a PHP or Node client runs them.

Each function takes an open psycopg2 connection in autocommit mode (every
statement is its own transaction, as in a Laravel job or a node-postgres
pool without BEGIN) and a payload shaped like the payload of the jobq kind
it mirrors, and returns a dict shaped like that kind's result, so that
bench.py can assert that both sides did the same work.

What each loop sends, per unit of work:
  slots_generate        one SELECT of the active rules; per rule and date of
                        the rule's weekday: one SELECT of the exceptions that
                        match the rule and touch its hours that day, one
                        multi-row INSERT ... ON CONFLICT DO NOTHING of the
                        day's free slots (the seed's "batch insert")
  reservations_release  one SELECT of the expired ids; one UPDATE per slot
  attendance_aggregate  one SELECT of the month's students; per student one
                        SELECT of hours per status and one upsert
  attendance_thresholds one SELECT of the month's students; per student one
                        SELECT of the monthly row; per threshold hit one
                        SELECT (already notified?), and for a new notice one
                        jobq.enqueue and one INSERT of the notice

Where the seeds leave a rule open, the loops follow the jobq kind, so that
the counts can match: a slot is dropped when it overlaps an exception (the
seed's hasException() could drop whole days), rates are rounded to two
decimals, and the notification job has the kind's payload, priority and
job_key.

Run standalone against a loaded database (see run.sh):
  /usr/bin/python3 loops.py 'host=/tmp/jobq-bench-seed port=5498 dbname=bench user=postgres' \\
      slots_generate '{"start_date": "2025-03-05", "end_date": "2025-05-04", "timezone": "Europe/Berlin"}'
"""

import datetime as dt
import json
import sys
from decimal import Decimal, ROUND_HALF_UP
from zoneinfo import ZoneInfo

import psycopg2


def _first_of_month(payload, cur):
    if payload.get('month'):
        d = dt.date.fromisoformat(payload['month'])
    else:
        cur.execute("SELECT now()::date")
        d = cur.fetchone()[0]
    return d.replace(day=1)


def _next_month(d):
    return d.replace(year=d.year + 1, month=1) if d.month == 12 else d.replace(month=d.month + 1)


def slots_generate(conn, payload):
    cur = conn.cursor()
    if payload.get('timezone'):
        tzname = payload['timezone']
    else:
        cur.execute("SHOW TimeZone")
        tzname = cur.fetchone()[0]
    tz = ZoneInfo(tzname)
    if payload.get('start_date'):
        first = dt.date.fromisoformat(payload['start_date'])
    else:
        first = dt.datetime.now(tz).date()
    last = dt.date.fromisoformat(payload['end_date']) if payload.get('end_date') \
        else first + dt.timedelta(days=30)

    where, args = ["active"], []
    if payload.get('facility_id') is not None:
        where.append("facility_id = %s")
        args.append(payload['facility_id'])
    if payload.get('doctor_id') is not None:
        where.append("doctor_id = %s")
        args.append(payload['doctor_id'])
    cur.execute("SELECT id, facility_id, doctor_id, service_id, day_of_week, start_time,"
                " end_time, slot_minutes, valid_from, valid_until"
                " FROM availability_rules WHERE " + " AND ".join(where) + " ORDER BY id", args)
    rules = cur.fetchall()

    created = candidates = 0
    ndays = (last - first).days + 1
    for (rule_id, facility_id, doctor_id, service_id, dow, start_time, end_time,
         minutes, valid_from, valid_until) in rules:
        step = dt.timedelta(minutes=minutes)
        for k in range(ndays):
            day = first + dt.timedelta(days=k)
            # PostgreSQL's day_of_week: 0 = Sunday; Python's weekday(): 0 = Monday
            if (day.weekday() + 1) % 7 != dow or day < valid_from or \
                    (valid_until is not None and day > valid_until):
                continue
            # local wall-clock start times, stepping slot_minutes
            slots = []
            t = dt.datetime.combine(day, start_time)
            block_end = dt.datetime.combine(day, end_time)
            while t + step <= block_end:
                # a slot lasts slot_minutes of real time, as in jobq
                starts = t.replace(tzinfo=tz).astimezone(dt.timezone.utc)
                slots.append((starts, starts + step))
                t += step
            if not slots:
                continue
            candidates += len(slots)
            cur.execute("SELECT starts_at, ends_at FROM availability_exceptions"
                        " WHERE (facility_id IS NULL OR facility_id = %s)"
                        " AND (doctor_id IS NULL OR doctor_id = %s)"
                        " AND starts_at < %s AND ends_at > %s",
                        (facility_id, doctor_id, slots[-1][1], slots[0][0]))
            exceptions = cur.fetchall()
            free = [s for s in slots
                    if not any(e_start < s[1] and e_end > s[0] for e_start, e_end in exceptions)]
            if not free:
                continue
            values = b",".join(cur.mogrify("(%s,%s,%s,%s,%s,%s,'open')",
                                           (rule_id, facility_id, doctor_id, service_id, s, e))
                               for s, e in free)
            cur.execute(b"INSERT INTO availability_slots (rule_id, facility_id, doctor_id,"
                        b" service_id, starts_at, ends_at, status) VALUES " + values +
                        b" ON CONFLICT (doctor_id, starts_at) DO NOTHING")
            created += cur.rowcount
    return {'created': created, 'skipped': candidates - created}


def reservations_release(conn, payload):
    cur = conn.cursor()
    cur.execute("SELECT id FROM availability_slots"
                " WHERE status = 'reserved' AND reserved_until < now()")
    released = 0
    for (slot_id,) in cur.fetchall():
        cur.execute("UPDATE availability_slots SET status = 'open', reserved_until = NULL"
                    " WHERE id = %s", (slot_id,))
        released += cur.rowcount
    return {'released': released}


def _rate(part, total):
    if total == 0:
        return None
    return (Decimal(100) * part / total).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)


def attendance_aggregate(conn, payload):
    cur = conn.cursor()
    month = _first_of_month(payload, cur)
    end = _next_month(month)
    campus = payload.get('campus_id')
    cur.execute("SELECT DISTINCT student_id, campus_id FROM attendance"
                " WHERE day >= %s AND day < %s AND (%s::bigint IS NULL OR campus_id = %s)"
                " ORDER BY 1, 2", (month, end, campus, campus))
    rows = 0
    for student_id, campus_id in cur.fetchall():
        cur.execute("SELECT status, sum(hours) FROM attendance"
                    " WHERE student_id = %s AND campus_id = %s AND day >= %s AND day < %s"
                    " GROUP BY status", (student_id, campus_id, month, end))
        h = {s: Decimal(0) for s in ('present', 'absent', 'late', 'sick', 'leave')}
        for status, hours in cur.fetchall():
            h[status] = hours
        total = sum(h.values())
        cur.execute(
            "INSERT INTO attendance_monthly (student_id, campus_id, month, present, absent,"
            " late, sick, leave, total_hours, attendance_rate, excused_rate)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (student_id, campus_id, month) DO UPDATE"
            " SET present = EXCLUDED.present, absent = EXCLUDED.absent, late = EXCLUDED.late,"
            " sick = EXCLUDED.sick, leave = EXCLUDED.leave, total_hours = EXCLUDED.total_hours,"
            " attendance_rate = EXCLUDED.attendance_rate, excused_rate = EXCLUDED.excused_rate",
            (student_id, campus_id, month, h['present'], h['absent'], h['late'], h['sick'],
             h['leave'], total, _rate(h['present'] + h['late'], total),
             _rate(h['sick'] + h['leave'], total)))
        rows += cur.rowcount
    return {'rows': rows, 'month': month.isoformat()}


def attendance_thresholds(conn, payload):
    cur = conn.cursor()
    if payload.get('refresh', True):
        attendance_aggregate(conn, payload)
    month = _first_of_month(payload, cur)
    campus = payload.get('campus_id')
    th = payload.get('thresholds', {})
    warning = Decimal(str(th.get('warning', 80)))
    mahroom = Decimal(str(th.get('mahroom', 75)))
    tasdiq = Decimal(str(th.get('tasdiq', 85)))
    urgent = payload.get('urgent_priority', -10)
    kind = payload['notify_kind']
    # notify_kind is a registered kind here: every flagged student is
    # reachable, as in the job (no_contact counts only for sms and email)
    counts = {'warning': 0, 'mahroom': 0, 'tasdiq': 0, 'notified': 0, 'no_contact': 0}

    cur.execute("SELECT student_id, campus_id FROM attendance_monthly"
                " WHERE month = %s AND (%s::bigint IS NULL OR campus_id = %s) ORDER BY 1, 2",
                (month, campus, campus))
    for student_id, campus_id in cur.fetchall():
        cur.execute("SELECT total_hours, attendance_rate, excused_rate FROM attendance_monthly"
                    " WHERE student_id = %s AND campus_id = %s AND month = %s",
                    (student_id, campus_id, month))
        total, rate, excused = cur.fetchone()
        if not total or total <= 0:
            continue
        hits = []
        if rate is not None and rate <= mahroom:
            hits.append(('mahroom', rate))
        elif rate is not None and rate < warning:
            hits.append(('warning', rate))
        if excused is not None and excused > 100 - tasdiq:
            hits.append(('tasdiq', excused))
        for threshold, value in hits:
            counts[threshold] += 1
            cur.execute("SELECT 1 FROM attendance_notices"
                        " WHERE student_id = %s AND month = %s AND threshold = %s",
                        (student_id, month, threshold))
            if cur.fetchone():
                continue
            cur.execute("SELECT jobq.enqueue(%s, jsonb_build_object('student_id', %s::bigint,"
                        " 'campus_id', %s::bigint, 'month', %s::date, 'threshold', %s::text,"
                        " 'rate', %s::numeric), priority => %s, job_key => %s)",
                        (kind, student_id, campus_id, month, threshold, value,
                         urgent if threshold == 'mahroom' else None,
                         'attendance:%s:%s:%s:%s' % (kind, student_id, month.strftime('%Y-%m'),
                                                     threshold)))
            job_id = cur.fetchone()[0]
            cur.execute("INSERT INTO attendance_notices"
                        " (student_id, campus_id, month, threshold, rate, job_id)"
                        " VALUES (%s, %s, %s, %s, %s, %s)",
                        (student_id, campus_id, month, threshold, value, job_id))
            counts['notified'] += 1
    counts['month'] = month.isoformat()
    return counts


LOOPS = {
    'slots.generate': slots_generate,
    'reservations.release': reservations_release,
    'attendance.aggregate': attendance_aggregate,
    'attendance.thresholds': attendance_thresholds,
}


if __name__ == '__main__':
    if len(sys.argv) != 4:
        sys.exit("usage: loops.py DSN FUNCTION PAYLOAD_JSON")
    c = psycopg2.connect(sys.argv[1])
    c.autocommit = True
    print(json.dumps(globals()[sys.argv[2]](c, json.loads(sys.argv[3]))))
