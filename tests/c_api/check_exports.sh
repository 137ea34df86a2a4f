#!/usr/bin/env bash
# check_exports.sh LIB HEADER: libblindsync.so must export exactly the bs_* functions the C header
# declares: nothing else (no C++ symbols, no libstdc++ instances), and none missing.
set -u
lib=$1
header=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TtWwDdBbRrVvi]$/ { print $3 }' | sed 's/@.*//' | sort -u)
declared=$(grep -o 'BLINDSYNC_C_API[^(]*(' "$header" | grep -o 'bs_[a-z_]*' | sort -u)
if [[ -z $exported ]]; then echo "check_exports: $lib exports nothing" >&2; exit 1; fi
if [[ -z $declared ]]; then echo "check_exports: no BLINDSYNC_C_API declarations in $header" >&2; exit 1; fi
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
rc=0
if [[ -n $extra ]]; then
  echo "check_exports: exported but not in the C API:" >&2; echo "$extra" | head -n 50 >&2; rc=1
fi
if [[ -n $missing ]]; then
  echo "check_exports: declared but not exported:" >&2; echo "$missing" >&2; rc=1
fi
[[ $rc -eq 0 ]] && echo "check_exports: $(echo "$exported" | wc -l) bs_* symbols, nothing else"
exit $rc
