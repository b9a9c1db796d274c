#!/bin/bash
# The Buildroot package and the Yocto recipe, built the way their current Go
# infrastructures build them, without Buildroot or BitBake (2 cores, no
# internet): from the commit they pin, with the modules they would fetch,
# the environment and the `go` command line of
#   Buildroot 2026.05.1  package/pkg-golang.mk, package/go/go.mk,
#                        support/download/go-post-process and helpers
#   Yocto 6.0.2          meta/classes-recipe/go.bbclass, goarch.bbclass,
#                        go-mod.bbclass, go-mod-update-modules.bbclass and
#                        bitbake's gomod fetcher
# for each architecture the recipes allow, offline (GOPROXY=off, from the
# module cache `make deps` filled). What differs from a real build, and why
# it does not change what is compiled: Go is this machine's (1.26.8; both
# ship 1.26, checked against go.mod's go line below); GOCACHE is the shared
# one, for time; no C toolchain (CC is a path that does not exist: cgo is
# off and must stay off); Yocto's GODEBUG=gocachehash=1 (debug output) is
# left out; GOPROXY=off stands for the network do_compile does not have.
#
#   deploy/recipes-check.sh             check (make test-artifacts)
#   deploy/recipes-check.sh pin COMMIT  point both recipes at COMMIT: the
#                                       version stamp, boxagent.hash and the
#                                       Yocto .inc files follow
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BR=deploy/buildroot/package/boxagent
YO=deploy/yocto/recipes-support/boxagent
# The Go each ships at that release.
BR_GO=1.26.3    # Buildroot 2026.05.1: package/go/go.mk GO_VERSION
YOCTO_GO=1.26.4 # Yocto 6.0.2 (wrynose): meta/recipes-devtools/go/go_1.26.4.bb
# GOARCH[:GOARM or GOMIPS] of each architecture the recipes allow (Config.in
# and COMPATIBLE_HOST); the environment may name fewer.
BR_ARCHES=${BR_ARCHES-"arm:7 arm64 amd64 riscv64"}
YOCTO_ARCHES=${YOCTO_ARCHES-"arm:7 arm64 amd64 riscv64 mipsle"}
MODCACHE=$("$GO" env GOMODCACHE)
tmp=$(mktemp -d /tmp/boxagent-recipes.XXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

say() { printf 'recipes: %s\n' "$*"; }
die() { printf 'recipes: %s\n' "$*" >&2; exit 1; }

# bbvar NAME: a one-line assignment of the Yocto recipe, ${...} expanded
# from the recipe's other one-line assignments.
bbvar() {
	local v
	v=$(sed -n "s/^\(export \)\{0,1\}$1 = \"\(.*\)\"\$/\2/p" "$YO/boxagent_git.bb")
	while [[ $v =~ \$\{([A-Za-z_]+)\} ]]; do
		v=${v//"${BASH_REMATCH[0]}"/$(bbvar "${BASH_REMATCH[1]}")}
	done
	echo "$v"
}
brvar() { sed -n "s/^BOXAGENT_$1 = //p" "$BR/boxagent.mk"; }

# tree COMMIT DIR: the commit's files as GitHub's archive of it has them.
tree() {
	mkdir -p "$2"
	git archive --format=tar "$1" | tar -x -C "$2"
}

# Buildroot's mk_tar_gz (support/download/helpers), verbatim but for names.
mk_tar_gz() {
	local in_dir=$1 base_dir=$2 date=$3 out=$4 list
	date="$(date -d "${date}" -u +%Y-%m-%dT%H:%M:%S+00:00)"
	local pax_options="delete=atime,delete=ctime,delete=mtime"
	pax_options+=",exthdr.name=%d/PaxHeaders/%f,exthdr.mtime={${date}}"
	list=$(mktemp --tmpdir="$tmp")
	(cd "$in_dir" && find . -not -type d | LC_ALL=C sort >"$list" &&
		tar cf - --transform="s#^\./#${base_dir}/#S" \
			--numeric-owner --owner=0 --group=0 --mtime="${date}" \
			--format=posix --pax-option="${pax_options}" --mode='go=u,go-w' \
			-T "$list") | gzip -6 -n >"$out"
}

# br_source COMMIT DIR: what Buildroot's download step makes of the commit:
# GitHub's archive, vendored by `go mod vendor` (go-post-process, with
# HOST_GO_COMMON_ENV; GOPROXY=off for its GOPROXY=direct), repacked with
# the date of its first file. Prints boxagent.hash.
br_source() {
	local c=$1 d=$2/boxagent-$1 f
	tree "$c" "$d"
	(cd "$d" && env GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local \
		GOMODCACHE="$MODCACHE" CGO_ENABLED=0 "$GO" mod vendor -v -modcacherw 2>"$tmp/vendor.log") ||
		{ cat "$tmp/vendor.log" >&2; die "Buildroot: go mod vendor failed"; }
	# Every file of git's archive has the commit's time.
	mk_tar_gz "$d" "boxagent-$c" "@$(git log -1 --format=%ct "$c")" "$2/boxagent-$c-go2.tar.gz"
	echo "# Locally computed by deploy/recipes-check.sh pin (Buildroot's download"
	echo "# steps replayed: GitHub's archive of the commit, go mod vendor, mk_tar_gz)."
	echo "sha256  $(sha256sum <"$2/boxagent-$c-go2.tar.gz" | cut -d' ' -f1)  boxagent-$c-go2.tar.gz"
	for f in $(sed -n '/^BOXAGENT_LICENSE_FILES = /,/[^\\]$/p' "$BR/boxagent.mk" | tr -d '\\' | sed 's/^BOXAGENT_LICENSE_FILES = //'); do
		[ -f "$d/$f" ] || die "Buildroot: licence file $f is not in the vendored source"
		echo "sha256  $(sha256sum <"$d/$f" | cut -d' ' -f1)  $f"
	done
}

# go_mods_inc SRC: boxagent-go-mods.inc for the tree SRC, made as
# go-mod-update-modules.bbclass makes it: the files `go list -deps
# GO_INSTALL` puts in an empty module cache (here from the local one).
go_mods_inc() {
	local mc=$tmp/gen-modcache dl at path zip m
	(cd "$1" && env GOMODCACHE="$mc" GOPROXY="file://$MODCACHE/cache/download" GOSUMDB=off GOFLAGS=-modcacherw \
		GOTOOLCHAIN=local GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 "$GO" list -json=Dir,Module -deps "$(bbvar GO_INSTALL)" >/dev/null 2>"$tmp/list.log") || { cat "$tmp/list.log" >&2; die "Yocto: go list -deps failed"; }
	dl=$mc/cache/download
	printf '\n# This file has been generated by deploy/recipes-check.sh pin, the way\n'
	printf '# go-mod-update-modules.bbclass writes it. Do not modify it by hand.\n\n'
	echo 'SRC_URI += "\'
	for at in $(cd "$dl" && find . -type d -name @v | sed 's|^\./||'); do
		path=$(dirname "$at" | sed 's/!\([a-z]\)/\U\1/g')
		zip=$(cd "$dl/$at" && ls | sed -n 's/\.zip$//p' | head -1)
		[ -n "$zip" ] && echo "gomod://$path;version=$zip;sha256sum=$(sha256sum <"$dl/$at/$zip.zip" | cut -d' ' -f1)"
		for m in $(cd "$dl/$at" && ls | sed -n 's/\.mod$//p'); do
			[ "$m" = "$zip" ] || echo "gomod://$path;version=$m;mod=1;sha256sum=$(sha256sum <"$dl/$at/$m.mod" | cut -d' ' -f1)"
		done
	done | awk '{ k = $0; gsub(/;/, " ", k); gsub(/\//, "!", k); print k "\t" $0 }' | LC_ALL=C sort | cut -f2 |
		sed 's/^/    /; s/$/ \\/'
	echo '"'
}

# generate COMMIT DIR: boxagent.hash and the two .inc files for COMMIT.
generate() {
	mkdir -p "$2/src"
	br_source "$1" "$2" >"$2/boxagent.hash"
	tree "$1" "$2/src/yocto"
	go_mods_inc "$2/src/yocto" >"$2/boxagent-go-mods.inc"
	SRC="$2/src/yocto" deploy/licenses.sh yocto-inc >"$2/boxagent-licenses.inc"
}

if [ "${1:-}" = pin ]; then
	c=$(git rev-parse "${2:?usage: $0 pin COMMIT}^{commit}")
	stamp=$(deploy/version.sh "$c")
	sed -i "s/^BOXAGENT_VERSION = .*/BOXAGENT_VERSION = $c/; s/^BOXAGENT_VERSION_STAMP = .*/BOXAGENT_VERSION_STAMP = $stamp/" "$BR/boxagent.mk"
	sed -i "s/^SRCREV = .*/SRCREV = \"$c\"/; s/^BOXAGENT_VERSION_STAMP = .*/BOXAGENT_VERSION_STAMP = \"$stamp\"/" "$YO/boxagent_git.bb"
	generate "$c" "$tmp/gen"
	cp "$tmp/gen/boxagent.hash" "$BR/"
	cp "$tmp/gen/boxagent-go-mods.inc" "$tmp/gen/boxagent-licenses.inc" "$YO/"
	say "pinned $c ($stamp)"
	exit
fi

# --- Both recipes pin one commit, and their files are those of that commit.
pin=$(brvar VERSION)
[ "$pin" = "$(bbvar SRCREV)" ] || die "Buildroot pins $pin, Yocto $(bbvar SRCREV): run deploy/recipes-check.sh pin <commit>"
git cat-file -e "$pin^{commit}" 2>/dev/null || die "the pinned commit $pin is not in this repository (rebased away?): run deploy/recipes-check.sh pin <commit>"
stamp=$(deploy/version.sh "$pin")
[ "$(brvar VERSION_STAMP)" = "$stamp" ] && [ "$(bbvar BOXAGENT_VERSION_STAMP)" = "$stamp" ] ||
	die "the version stamps are not deploy/version.sh $pin ($stamp)"
generate "$pin" "$tmp/gen"
for f in "$BR/boxagent.hash" "$YO/boxagent-go-mods.inc" "$YO/boxagent-licenses.inc"; do
	diff -u "$f" "$tmp/gen/$(basename "$f")" >&2 || die "$f is not that of $pin: run deploy/recipes-check.sh pin $pin"
done
# Buildroot's licence files name each module compiled in (those of the
# licences .inc), no fewer, no more.
want=$(sed -n 's|^ *file://pkg/mod/\([^@]*\)@.*|\1|p' "$YO/boxagent-licenses.inc" | sort -u)
have=$(sed -n '/^BOXAGENT_LICENSE_FILES = /,/[^\\]$/p' "$BR/boxagent.mk" | sed -n 's|.*vendor/\(.*\)/[^/]*$|\1|p' | sort -u)
[ "$want" = "$have" ] || die "BOXAGENT_LICENSE_FILES covers $(echo $have), the binary has $(echo $want)"
say "pinned commit $pin: boxagent.hash (source tarball and licence files) and the Yocto .inc files match it"

# --- The Go they ship is new enough for go.mod (pinned commit and this tree).
for gomod in "$(git show "$pin:go.mod")" "$(cat go.mod)"; do
	need=$(sed -n 's/^go //p' <<<"$gomod")
	for have in "Buildroot $BR_GO" "Yocto $YOCTO_GO"; do
		printf '%s\n%s\n' "$need" "${have#* }" | sort -V -C ||
			die "go.mod says go $need; ${have% *} ships Go ${have#* } (GOTOOLCHAIN=local there)"
	done
done

# check BIN ARCH STAMP: a static binary of that architecture with the stamp.
check_bin() {
	[ -x "$1" ] || die "$2: no binary at $1"
	file -b "$1" | grep -q 'statically linked' || die "$2: $1 is not static: $(file -b "$1")"
	grep -qaF "$3" "$1" || die "$2: $1 does not carry the version $3"
	printf '  %-30s %9d bytes  static\n' "$2" "$(stat -c %s "$1")"
}

# --- Buildroot: the build command of pkg-golang.mk with HOST_GO_TARGET_ENV
# of go.mk, run by make on the package's own .mk.
cat >"$tmp/br.mk" <<'MK'
# From Buildroot 2026.05.1; BR2_* as the architecture sets them.
BR2_aarch64 := $(if $(filter arm64,$(GO_GOARCH)),y)
BR2_STATIC_LIBS := $(STATIC)
PARALLEL_JOBS := 2
pkgname := boxagent
github = https://github.com/$(1)/$(2)/archive/$(3)
HOST_GO_COMMON_ENV = GO111MODULE=on GOFLAGS=-mod=vendor GOROOT="$(HOST_GO_ROOT)" \
	GOPATH="$(HOST_GO_GOPATH)" GOCACHE="$(HOST_GO_TARGET_CACHE)" \
	GOMODCACHE="$(HOST_GO_GOPATH)/pkg/mod" GOPROXY=off GOTOOLCHAIN=local \
	PATH=$(BR_PATH) GOBIN= CGO_ENABLED=$(HOST_GO_CGO_ENABLED)
HOST_GO_CGO_ENABLED = 1
HOST_GO_TARGET_ENV = $(HOST_GO_COMMON_ENV) GOOS="linux" GOARCH=$(GO_GOARCH) \
	$(if $(GO_GOARM),GOARM=$(GO_GOARM)) CC="$(TARGET_CC)" CXX="$(TARGET_CXX)" \
	CGO_LDFLAGS="$(TARGET_LDFLAGS)" GOTOOLDIR="$(HOST_GO_TOOLDIR)" \
	CGO_CFLAGS="$(TARGET_CFLAGS)" CGO_CXXFLAGS="$(TARGET_CXXFLAGS)"
# package/pkg-golang.mk, inner-golang-package for a target package: the
# parts that make the build command.
define golang-package
ifneq ($$(BOXAGENT_INSTALL_BINS),)
$$(error Package boxagent sets BOXAGENT_INSTALL_BINS, which is no longer supported)
endif
BOXAGENT_BUILD_OPTS += -ldflags "$$(BOXAGENT_LDFLAGS)" -modcacherw -tags "$$(BOXAGENT_TAGS)" \
	-trimpath -p $$(PARALLEL_JOBS) -buildvcs=false
BOXAGENT_BUILD_TARGETS ?= .
ifeq ($$(words $$(BOXAGENT_BUILD_TARGETS)),1)
BOXAGENT_BIN_NAME ?= $$(if $$(filter .,$$(BOXAGENT_BUILD_TARGETS)),boxagent,$$(notdir $$(BOXAGENT_BUILD_TARGETS)))
endif
ifeq ($(BR2_STATIC_LIBS),y)
BOXAGENT_EXTLDFLAGS += -static
BOXAGENT_TAGS += osusergo netgo
endif
ifeq ($(BR2_aarch64),y)
BOXAGENT_EXTLDFLAGS += -fuse-ld=bfd
endif
ifneq ($$(BOXAGENT_EXTLDFLAGS),)
BOXAGENT_LDFLAGS += -extldflags '$$(BOXAGENT_EXTLDFLAGS)'
endif
endef
include $(PKG)/boxagent.mk
# pkg-golang.mk's BOXAGENT_BUILD_CMDS; $(@D) is the extracted, vendored
# source, as in Buildroot.
define BOXAGENT_BUILD_CMDS
	$(foreach d,$(BOXAGENT_BUILD_TARGETS),\
		cd $(@D)/$(BOXAGENT_SUBDIR); \
		$(HOST_GO_TARGET_ENV) \
			$(BOXAGENT_GO_ENV) \
			$(GO_BIN) build -v $(BOXAGENT_BUILD_OPTS) \
			-o $(@D)/bin/$(or $(BOXAGENT_BIN_NAME),$(notdir $(d))) \
			$(BOXAGENT_GOMOD)/$(d)
	)
endef
$(SRCDIR)/build:
	$(BOXAGENT_BUILD_CMDS)
MK
say "Buildroot (Go $BR_GO there), go build in the vendored source of $pin:"
src=$tmp/gen/boxagent-$pin
for a in $BR_ARCHES; do
	arch=${a%%:*} var=${a#*:}; [ "$var" = "$a" ] && var=
	for static in "" y; do
		# BR2_STATIC_LIBS changes tags (netgo osusergo): once, on arm.
		[ -z "$static" ] || [ "$arch" = arm ] || continue
		rm -rf "$src/bin"
		make -s -f "$tmp/br.mk" "$src/build" PKG="$PWD/$BR" SRCDIR="$src" STATIC="$static" \
			GO_GOARCH="$arch" GO_GOARM="$var" GO_BIN="$(command -v "$GO")" HOST_GO_ROOT="$("$GO" env GOROOT)" \
			HOST_GO_GOPATH="$tmp/br-gopath" HOST_GO_TARGET_CACHE="$("$GO" env GOCACHE)" BR_PATH="$PATH" \
			HOST_GO_TOOLDIR="$("$GO" env GOTOOLDIR)" TARGET_CC=/nonexistent/buildroot-gcc \
			TARGET_CXX=/nonexistent/buildroot-g++ >"$tmp/br-build.log" 2>&1 ||
			{ tail -20 "$tmp/br-build.log" >&2; die "Buildroot: linux/$arch${var:+ ($var)}${static:+ BR2_STATIC_LIBS}: the build failed"; }
		check_bin "$src/bin/boxagent" "linux/$arch${var:+ GOARM=$var}${static:+ static libs}" "$stamp"
	done
done

# --- Yocto: go_do_configure and go_do_compile of go.bbclass (go-mod), in
# ${B}/src/${GO_IMPORT}, with the modules of boxagent-go-mods.inc unpacked
# into GOMODCACHE=${S}/pkg/mod by the gomod fetcher.
say "Yocto (Go $YOCTO_GO there), go install in \${B}/src/$(bbvar GO_IMPORT) of $pin:"
S=$tmp/yocto/sources/boxagent-0.1.0+git B=$tmp/yocto/build
tree "$pin" "$S/src/$(bbvar GO_IMPORT)"
sed -n 's/^ *gomod:\/\/\([^;]*\);version=\([^;]*\);\(mod=1;\)\{0,1\}sha256sum=\([0-9a-f]*\) \\$/\1 \2 \3 \4/p' "$YO/boxagent-go-mods.inc" |
	while read -r path version mod sum; do
		[ -n "$sum" ] || { sum=$mod; mod=; }
		esc=$(sed 's/\([A-Z]\)/!\L\1/g' <<<"$path") ext=.zip; [ -n "$mod" ] && ext=.mod
		from=$MODCACHE/cache/download/$esc/@v/$version$ext to=$S/pkg/mod/cache/download/$esc/@v
		[ "$(sha256sum <"$from" | cut -d' ' -f1)" = "$sum" ] || die "Yocto: $path $version$ext is not the one boxagent-go-mods.inc names"
		mkdir -p "$to" && cp "$from" "$to/"
		if [ -z "$mod" ]; then
			unzip -p "$from" "$path@$version/go.mod" >"$to/$version.mod" 2>/dev/null || echo "module $path" >"$to/$version.mod"
		fi
	done
mkdir -p "$B" "$tmp/yocto/tmp-go-build" && ln -snf "$S/src" "$B/"
gobuildflags_remove=" $(bbvar 'GOBUILDFLAGS:remove') "
for a in $YOCTO_ARCHES; do
	arch=${a%%:*} var=${a#*:}; [ "$var" = "$a" ] && var=
	if [ "$arch" = mipsle ]; then
		var=$(bbvar GOMIPS)
		[ -n "$var" ] || die "Yocto: the recipe leaves GOMIPS to the tune (softfloat or hardfloat): only one is checked"
	fi
	# goarch.bbclass and linuxloader.bbclass (glibc) for each TARGET_ARCH.
	case $arch in
	arm) loader=/lib/ld-linux-armhf.so.3 dynlink=1 ;;
	arm64) loader=/lib/ld-linux-aarch64.so.1 dynlink=1 ;;
	amd64) loader=/lib64/ld-linux-x86-64.so.2 dynlink=1 ;;
	riscv64) loader=/lib/ld-linux-riscv64-lp64d.so.1 dynlink= ;;
	mipsle) loader=/lib/ld.so.1 dynlink= ;;
	esac
	rpath=; [ -n "$dynlink" ] && rpath="-r /usr/lib/go/pkg/linux_${arch}_dynlink"
	extld="-Wl,-O1 -Wl,--hash-style=gnu -Wl,--as-needed -Wl,-z,relro,-z,now"
	flags="-p 2 -v -ldflags=\"$rpath  -I $loader $(bbvar GO_EXTRA_LDFLAGS) -extldflags '$extld'\" -trimpath -modcacherw"
	# go.bbclass's anonymous python: -buildmode=pie but on mips.
	[ "$arch" = mipsle ] || flags="$flags -buildmode=pie"
	# The recipe's GOBUILDFLAGS:remove, word by word as BitBake does it.
	kept=; for w in $flags; do [[ $gobuildflags_remove == *" $w "* ]] || kept="$kept $w"; done
	# and its GOBUILDFLAGS:append (BitBake appends before it removes).
	kept="$kept$(bbvar 'GOBUILDFLAGS:append')"
	toolchain=$(bbvar GOTOOLCHAIN)
	rm -rf "$B/bin" "$B/pkg"
	(
		cd "$B/src/$(bbvar GO_IMPORT)"
		export GOROOT="$("$GO" env GOROOT)" GOCACHE="$("$GO" env GOCACHE)" GOARCH=$arch GOOS=linux \
			GOHOSTARCH="$("$GO" env GOHOSTARCH)" GOHOSTOS=linux GOWORK=off GOPATH=$B GOENV=off GOPROXY=off \
			GOTMPDIR=$tmp/yocto/tmp-go-build TMPDIR=$tmp/yocto/tmp-go-build GOMODCACHE=$S/pkg/mod \
			GOTOOLDIR="$("$GO" env GOTOOLDIR)" GOPATH_OMIT_IN_ACTIONID=1 CC=/nonexistent/yocto-gcc \
			CGO_ENABLED="$(bbvar CGO_ENABLED)" GOBUILDFLAGS="$kept" GOFLAGS=
		unset GOARM GOMIPS
		[ "$arch" = arm ] && export GOARM=$var
		[ "$arch" = mipsle ] && export GOMIPS=$var
		if [ -n "$toolchain" ]; then export GOTOOLCHAIN=$toolchain; else unset GOTOOLCHAIN; fi
		pkgs=$(eval "$GO list -f '{{.ImportPath}}' $kept $(bbvar GO_INSTALL)" | grep -Ev "$(bbvar GO_IMPORT)/vendor/") || exit 1
		eval "$GO install $(bbvar GO_LINKSHARED) $kept $pkgs" || exit 1
	) >"$tmp/yocto-build.log" 2>&1 ||
		{ tail -20 "$tmp/yocto-build.log" >&2; die "Yocto: linux/$arch${var:+ ($var)}: the build failed"; }
	bin=$B/bin/linux_$arch/boxagent; [ "$arch" = "$("$GO" env GOHOSTARCH)" ] && bin=$B/bin/boxagent
	check_bin "$bin" "linux/$arch${var:+ GOARM/GOMIPS=$var}" "$stamp"
	if [ "$arch" = "$("$GO" env GOHOSTARCH)" ]; then
		out=$("$bin" --version 2>&1) || true
		grep -qF "$stamp" <<<"$out" || die "Yocto: the $arch binary says '$out', not $stamp"
		say "  it runs: $out"
	fi
done
say "both recipes build for every architecture they allow"
