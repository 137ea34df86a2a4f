#!/usr/bin/env bash
# run_with_relay.sh RELAY_BIN [--preload-sanitizers-of LIB] -- COMMAND [ARGS...]
#
# Starts a real relay (`RELAY_BIN --listen 127.0.0.1:0 --data <tmp>`), waits for its
# "listening on ws://... relay_id=..." line, runs COMMAND with every @RELAY_URL@ in its arguments
# replaced by the relay URL and @WORK_DIR@ by a fresh empty directory, then stops the relay with
# SIGTERM. Exits with COMMAND's status (or 1 when the relay did not start).
#
# --preload-sanitizers-of LIB: LIB is a shared library to be loaded by an uninstrumented program
# (python3 + ctypes). When LIB was built with ASan its runtime must be the first library loaded, so
# COMMAND runs with LD_PRELOAD=<that libasan> and leak detection off (the interpreter's own
# allocations are not ours to judge).
#
# Every wait is bounded: relay start 20 s, COMMAND ${COMMAND_TIMEOUT:-180} s, relay stop 15 s.
set -u

usage() { echo "usage: $0 RELAY_BIN [--preload-sanitizers-of LIB] -- COMMAND [ARGS...]" >&2; exit 2; }

[[ $# -ge 3 ]] || usage
relay_bin=$1; shift
preload_lib=""
while [[ $# -gt 0 && $1 != "--" ]]; do
  case $1 in
    --preload-sanitizers-of) preload_lib=$2; shift 2 ;;
    *) usage ;;
  esac
done
[[ $# -ge 2 && $1 == "--" ]] || usage
shift

base=$(mktemp -d "${TMPDIR:-/tmp}/blindsync-capi-test.XXXXXX") || exit 1
relay_pid=""

stop_relay() {
  [[ -n $relay_pid ]] || return 0
  kill -TERM "$relay_pid" 2>/dev/null
  for _ in $(seq 150); do
    kill -0 "$relay_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$relay_pid" 2>/dev/null; then
    echo "run_with_relay: relay did not stop within 15 s of SIGTERM; killing it" >&2
    kill -KILL "$relay_pid" 2>/dev/null
    wait "$relay_pid" 2>/dev/null
    relay_pid=""
    return 1
  fi
  wait "$relay_pid" 2>/dev/null
  local rc=$?
  relay_pid=""
  return $rc
}
cleanup() { stop_relay >/dev/null 2>&1; rm -rf "$base"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$base/relay" "$base/work"
"$relay_bin" --listen 127.0.0.1:0 --data "$base/relay" >"$base/relay.out" 2>"$base/relay.err" &
relay_pid=$!

relay_url=""
for _ in $(seq 200); do
  relay_url=$(grep -m1 -o 'listening on ws://[^ ]*' "$base/relay.out" 2>/dev/null | sed 's/^listening on //')
  [[ -n $relay_url ]] && break
  if ! kill -0 "$relay_pid" 2>/dev/null; then break; fi
  sleep 0.1
done
if [[ -z $relay_url ]]; then
  echo "run_with_relay: the relay did not report its URL within 20 s" >&2
  echo "--- relay stdout"; cat "$base/relay.out"; echo "--- relay stderr"; tail -n 50 "$base/relay.err"
  exit 1
fi
echo "run_with_relay: relay at $relay_url"

args=()
for arg in "$@"; do
  arg=${arg//@RELAY_URL@/$relay_url}
  arg=${arg//@WORK_DIR@/$base/work}
  args+=("$arg")
done

env_prefix=()
if [[ -n $preload_lib ]]; then
  asan=$(ldd "$preload_lib" 2>/dev/null | awk '/libasan\.so/ { print $3; exit }')
  if [[ -n $asan ]]; then
    if [[ ! -f $asan ]]; then
      echo "run_with_relay: $preload_lib needs libasan but '$asan' is not a file" >&2
      exit 1
    fi
    echo "run_with_relay: $preload_lib is ASan-instrumented; preloading $asan"
    env_prefix=(env "LD_PRELOAD=$asan${LD_PRELOAD:+:$LD_PRELOAD}"
                "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
  fi
fi

timeout --kill-after=10 "${COMMAND_TIMEOUT:-180}" "${env_prefix[@]}" "${args[@]}"
rc=$?
if [[ $rc -eq 124 ]]; then echo "run_with_relay: command timed out" >&2; fi

# The relay's own shutdown is tested by the relay's tests; here an unclean exit is reported only.
if ! stop_relay; then
  echo "run_with_relay: warning: the relay exited uncleanly after SIGTERM" >&2
fi
if [[ $rc -ne 0 ]]; then
  echo "--- relay stderr (last 50 lines)"; tail -n 50 "$base/relay.err"
fi
exit $rc
