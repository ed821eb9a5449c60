# Shared by tools/test.sh and tools/demo.sh: install what is missing, build,
# install the extension.  Run as root on Debian 12 (or as a user who already
# has the packages and may write to PostgreSQL's directories).
#
# The PostgreSQL it builds against and installs into: the major version
# JOBQ_PG, 15 by default (Debian 12's packages: PG_BIN and PG_CONFIG
# below).  use_pg_version switches to another major, built from source by
# tools/pg-build.sh (18; cached under /opt/jobq-pg), for tools/test.sh.

JOBQ_PG=${JOBQ_PG:-15}
PG_BIN=/usr/lib/postgresql/15/bin
# the project's own builds make every warning an error (see the Makefile)
export JOBQ_WERROR=1
PG_CONFIG=$PG_BIN/pg_config
PACKAGES=(postgresql-15 postgresql-server-dev-15 libcurl4-openssl-dev
	postgresql-15-cron libipc-run-perl make gcc rsync python3 python3-aiosmtpd
	openssl cppcheck clang-tidy clang-format)

# The build is installed into the server's own directories, which every
# test run on this machine uses: one run at a time, holding this lock until
# the calling script exits.
take_test_lock() {
	exec 9>/tmp/jobq-test.lock
	flock 9
}

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${missing[*]}; run this as root to install them" >&2
		exit 1
	fi
	echo "== installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
}

# PG_BIN and PG_CONFIG of PostgreSQL $JOBQ_PG: 15 is Debian's; another
# major is built (once, then cached) by tools/pg-build.sh, which prints its
# pg_config last.  Installs into that build's directories: call it holding
# the test lock.
use_pg_version() {
	[ "$JOBQ_PG" = 15 ] && return 0
	PG_CONFIG=$(bash tools/pg-build.sh "$JOBQ_PG" | tail -n 1)
	[ -x "$PG_CONFIG" ] || { echo "no pg_config for PostgreSQL $JOBQ_PG" >&2; exit 1; }
	PG_BIN=$("$PG_CONFIG" --bindir)
	echo "== PostgreSQL $JOBQ_PG: $("$PG_CONFIG" --version), $PG_CONFIG"
}

# jobq, and its job pack, the extension jobq_pack (pack/)
build_and_install() {
	echo "== building jobq and jobq_pack"
	# Objects of another major version are never reused: the build starts
	# clean when the last one was for another pg_config (.jobq-pg-config),
	# or when objects were built since (tools/lint.sh, on 15).
	if [ "$(cat .jobq-pg-config 2>/dev/null)" != "$PG_CONFIG" ] ||
		[ -n "$(find src -name '*.o' -newer .jobq-pg-config 2>/dev/null | head -n 1)" ]; then
		make -s PG_CONFIG="$PG_CONFIG" clean
		make -s -C pack PG_CONFIG="$PG_CONFIG" clean
	fi
	echo "$PG_CONFIG" >.jobq-pg-config
	make -s PG_CONFIG="$PG_CONFIG"
	make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	make -s -C pack PG_CONFIG="$PG_CONFIG"
	make -s -C pack PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# A copy of the source tree that the postgres user owns (servers and TAP
# tests refuse to run as root).
scratch_copy() {
	local dir
	dir=$(mktemp -d /tmp/jobq-XXXXXX)
	rsync -a --exclude .git --exclude 'tmp_check*' --exclude results \
		--exclude output_iso ./ "$dir/"
	chown -R postgres: "$dir"
	echo "$dir"
}

as_postgres() {
	if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

# build_node_client DEST: jobq's TypeScript client (clients/node) built in
# DEST from its pinned dependencies (npm ci from the npm registry, then
# tsc): DEST/dist/src/index.js, with DEST/node_modules (pg) beside it.
# Node and npm come with the machine; Debian's are installed if missing.
build_node_client() {
	local root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	if ! command -v npm >/dev/null; then
		echo "== installing nodejs and npm (Debian's)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
	fi
	rm -rf "$1"
	mkdir -p "$1"
	cp -r "$root/clients/node/package.json" "$root/clients/node/package-lock.json" \
		"$root/clients/node/tsconfig.json" "$root/clients/node/src" "$root/clients/node/test" "$1/"
	(cd "$1" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npx tsc -p .)
}
