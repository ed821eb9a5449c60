#!/usr/bin/env bash
# Build a PostgreSQL major version that Debian 12 has no binary packages of
# (18, and 17 when its source is served) from Debian's source package, for
# jobq's tests, and install it under /opt/jobq-pg/<exact Debian version>.
# The build is cached: a second run with the same version only prints the
# path.  /opt/jobq-pg/<major> links to the version built last.
#
# Usage: bash tools/pg-build.sh <major>        (as root)
# Prints the pg_config of the installation on its last line.
#
# Sources: upstream's release tarball from Debian's source package (Debian's
# patches are not applied: they put the libraries outside the prefix), from
# a deb-src entry of jobq's own (/etc/apt/sources.list.d/
# jobq-pg-src.sources) for the Debian suite that has the version: unstable
# for 18, trixie for 17.  Only source packages are read from it; nothing is
# installed from those suites.  The build: configure with TAP tests, no
# readline and no ICU (jobq needs neither), make world-bin without the docs,
# installed with contrib and the isolation tester.  About 5 minutes of
# make -j2 on a 2-core machine.
set -euo pipefail

major=${1:?usage: bash tools/pg-build.sh <major version>}
case "$major" in
17) suite=trixie ;;
18) suite=unstable ;;
*) echo "pg-build.sh: PostgreSQL $major is not built here (15 comes from Debian 12's packages)" >&2
	exit 2 ;;
esac
root=/opt/jobq-pg
src_list=/etc/apt/sources.list.d/jobq-pg-src.sources
package=postgresql-$major

log() { echo "== pg-build: $*" >&2; }

# the suites' source indices, fetched once per suite
if ! grep -qs "^Suites:.* $suite\b" "$src_list"; then
	suites=$(sed -n 's/^Suites: //p' "$src_list" 2>/dev/null || true)
	cat >"$src_list" <<EOF
# jobq: PostgreSQL sources for tools/pg-build.sh (source packages only)
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $(echo "$suites $suite" | xargs)
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	log "apt-get update (source indices of $suite)"
	apt-get update -qq >&2
fi

version=$(apt-cache showsrc "$package" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1)
if [ -z "$version" ]; then
	echo "pg-build.sh: Debian's indices list no source package $package" >&2
	exit 3
fi
prefix=$root/$version
if [ -f "$prefix/.jobq-built" ]; then
	log "PostgreSQL $version is already built in $prefix"
	ln -sfn "$version" "$root/$major"
	echo "$prefix/bin/pg_config"
	exit 0
fi

log "building PostgreSQL $version (Debian source package $package) into $prefix"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	dpkg-dev bison flex zlib1g-dev libipc-run-perl make gcc >&2
build=$(mktemp -d /tmp/jobq-pg-build.XXXXXX)
trap 'rm -rf "$build"' EXIT
chmod 755 "$build"
# upstream's sources as Debian ships them, without Debian's patches (they
# move the library directory to /usr/lib/postgresql/<major>, outside the
# prefix)
if ! (cd "$build" && apt-get source -qq --download-only "$package=$version" >&2 &&
	dpkg-source --skip-patches -x ./*.dsc >&2); then
	echo "pg-build.sh: the mirror lists $package $version but did not serve its files" >&2
	exit 3
fi
srcdir=$(find "$build" -mindepth 1 -maxdepth 1 -type d -name "postgresql-$major*" | head -n 1)
# the build runs as an unprivileged user: PostgreSQL's own tests refuse root
chown -R postgres: "$build"
as_builder() { runuser -u postgres -- "$@"; }
(
	cd "$srcdir"
	as_builder ./configure --quiet --prefix="$prefix" --enable-tap-tests \
		--without-readline --without-icu --with-zlib >&2
	as_builder make -s -j"$(nproc)" world-bin >&2
) || { echo "pg-build.sh: the build of $version failed" >&2; exit 1; }
rm -rf "$prefix"
(cd "$srcdir" && make -s install-world-bin >&2) ||
	{ echo "pg-build.sh: installing $version failed" >&2; exit 1; }
# the mark of a whole installation (a build stopped half way is redone)
echo "$version" >"$prefix/.jobq-built"
ln -sfn "$version" "$root/$major"
log "PostgreSQL $version installed in $prefix"
echo "$prefix/bin/pg_config"
