#!/usr/bin/env bash
# run_packaging_test.sh --build DIR --cmake CMAKE --source CONSUMER_DIR --generator GEN
#                       [--make-program P] [--cc CC] [--cxx CXX] [--build-type T]
#                       [--c-flags F] [--cxx-flags F] [--exe-linker-flags F]
#
# Installs the build tree to a fresh prefix (cmake --install DIR --prefix TMP), checks what was
# installed, then builds the out-of-tree consumer twice, and runs what it built:
#   1. with CMake: find_package(blindsync) -> blindsync::client, ::transport_ws, ::c, ::c_shared;
#   2. with pkg-config only: `pkg-config --cflags --libs blindsync` (C++) and blindsync-c (C).
# The compiler and flags are the build's own (a sanitizer build's libraries need the sanitizer
# runtime at link time). Every step is bounded by `timeout`.
set -euo pipefail

build="" cmake="" source="" generator="" make_program="" cc="cc" cxx="c++" build_type="Debug"
c_flags="" cxx_flags="" exe_linker_flags=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2 ;;
    --cmake) cmake=$2 ;;
    --source) source=$2 ;;
    --generator) generator=$2 ;;
    --make-program) make_program=$2 ;;
    --cc) cc=$2 ;;
    --cxx) cxx=$2 ;;
    --build-type) build_type=$2 ;;
    --c-flags) c_flags=$2 ;;
    --cxx-flags) cxx_flags=$2 ;;
    --exe-linker-flags) exe_linker_flags=$2 ;;
    *) echo "run_packaging_test: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
[[ -n $build && -n $cmake && -n $source && -n $generator ]] || { echo "run_packaging_test: missing arguments" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/blindsync-packaging.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "run_packaging_test: FAIL: $*" >&2; exit 1; }

echo "== install to $prefix"
timeout 300 "$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install"; }

echo "== installed files"
libdir=""
for candidate in "$prefix"/lib "$prefix"/lib64 "$prefix"/lib/*-linux-gnu; do
  if [[ -f $candidate/cmake/blindsync/blindsyncConfig.cmake ]]; then libdir=$candidate; break; fi
done
[[ -n $libdir ]] || fail "no <libdir>/cmake/blindsync/blindsyncConfig.cmake under $prefix"
for f in include/blindsync/core/status.h include/blindsync/auth/identity.h include/blindsync/crypto/payload.h \
         include/blindsync/client/async_client.h include/blindsync/transport_ws/ws_transport.h \
         include/blindsync/c/blindsync.h bin/blindsync-relay bin/blindsync; do
  [[ -f $prefix/$f ]] || fail "missing $f"
done
for f in libblindsync_core.a libblindsync_auth.a libblindsync_crypto.a libblindsync_client.a \
         libblindsync_transport_ws.a libblindsync_c.a libblindsync.so \
         cmake/blindsync/blindsyncConfigVersion.cmake cmake/blindsync/blindsyncTargets.cmake \
         pkgconfig/blindsync.pc pkgconfig/blindsync-c.pc; do
  [[ -e $libdir/$f ]] || fail "missing ${libdir#$prefix/}/$f"
done
# Only public headers, and none of them pulls in a third-party header.
stray=$(cd "$prefix/include" && find . -type f | grep -v -E '^\./blindsync/(core|auth|crypto|client|transport_ws|c)/[a-z0-9_]+\.h$' || true)
[[ -z $stray ]] || fail "unexpected files installed under include/: $stray"
if grep -rn -E '#include *[<"](boost|msgpack|sodium|sqlite3|nlohmann|spdlog)' "$prefix/include"; then
  fail "an installed header includes a third-party header"
fi
# Private build-only dependencies must not leak into the exported targets.
if grep -n -E 'msgpack|Boost::|nlohmann|spdlog' "$libdir"/cmake/blindsync/blindsyncTargets*.cmake; then
  fail "a build-only dependency leaked into the CMake package"
fi

run() {  # run NAME COMMAND...: runs with a bounded time, output shown, failure fatal
  local name=$1; shift
  echo "== run $name"
  timeout 120 "$@" || fail "$name exited with $?"
}

echo "== consumer with find_package(blindsync)"
cmake_args=(-S "$source" -B "$tmp/consumer-build" -G "$generator" "-DCMAKE_PREFIX_PATH=$prefix"
            "-DCMAKE_BUILD_TYPE=$build_type" "-DCMAKE_C_COMPILER=$cc" "-DCMAKE_CXX_COMPILER=$cxx"
            "-DCMAKE_C_FLAGS=$c_flags" "-DCMAKE_CXX_FLAGS=$cxx_flags" "-DCMAKE_EXE_LINKER_FLAGS=$exe_linker_flags")
[[ -n $make_program ]] && cmake_args+=("-DCMAKE_MAKE_PROGRAM=$make_program")
timeout 300 "$cmake" "${cmake_args[@]}" >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "consumer configure"; }
timeout 600 "$cmake" --build "$tmp/consumer-build" -j 2 >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "consumer build"; }
run consumer "$tmp/consumer-build/consumer" "$tmp/home-cmake"
run consumer_c "$tmp/consumer-build/consumer_c" "$tmp/home-cmake-c"
run consumer_c_shared "$tmp/consumer-build/consumer_c_shared" "$tmp/home-cmake-c-shared"

echo "== consumer with pkg-config"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc=$(pkg-config --cflags --libs blindsync) || fail "pkg-config --cflags --libs blindsync"
echo "pkg-config --cflags --libs blindsync: $pc"
# The .pc file is relocatable (prefix=${pcfiledir}/../..): compare resolved paths.
include_flag=$(pkg-config --cflags-only-I blindsync | tr ' ' '\n' | grep -m1 '^-I' || true)
[[ -n $include_flag && $(realpath "${include_flag#-I}") == $(realpath "$prefix/include") ]] \
  || fail "blindsync.pc Cflags ($include_flag) do not point at $prefix/include"
[[ $pc == *"-lblindsync_client"* ]] || fail "blindsync.pc Libs lack -lblindsync_client"
[[ $pc == *"-lsodium"* ]] || fail "blindsync.pc does not bring libsodium"
# shellcheck disable=SC2086  # flags are word lists
timeout 600 "$cxx" -std=c++20 $cxx_flags "$source/main.cpp" -o "$tmp/consumer-pc" $pc $exe_linker_flags \
  || fail "building the consumer with pkg-config flags"
run consumer-pc "$tmp/consumer-pc" "$tmp/home-pc"
pc_c=$(pkg-config --cflags --libs blindsync-c) || fail "pkg-config --cflags --libs blindsync-c"
echo "pkg-config --cflags --libs blindsync-c: $pc_c"
# shellcheck disable=SC2086
timeout 300 "$cc" -std=c99 $c_flags "$source/main_c.c" -o "$tmp/consumer-c-pc" $pc_c $exe_linker_flags \
  || fail "building the C consumer with pkg-config flags"
run consumer-c-pc env "LD_LIBRARY_PATH=$libdir" "$tmp/consumer-c-pc" "$tmp/home-pc-c"

echo "run_packaging_test: OK"
