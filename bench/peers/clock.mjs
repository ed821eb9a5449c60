// clock.mjs: wall-clock time in microseconds since the epoch, with
// microsecond resolution, for the pickup-latency scenario.
//
// Date.now() has millisecond resolution, too coarse for latencies of a few
// milliseconds.  performance.timeOrigin is the wall-clock time at which the
// process started, read with microsecond precision, and performance.now()
// the monotonic time since then.  The harness and the peer workers both use
// this, and the harness checks it against PostgreSQL's clock_timestamp()
// (same machine, same system clock) before it measures.

export function nowUs() {
	return (performance.timeOrigin + performance.now()) * 1000;
}
