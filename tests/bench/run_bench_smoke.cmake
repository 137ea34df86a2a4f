# cmake -DBENCH=... -DRELAY=... -DCHECKER=... -DOUT=... -P run_bench_smoke.cmake
# Runs every workload for about a second against a relay the bench starts itself, then checks
# every stdout line with bench_output_check.
foreach(var BENCH RELAY CHECKER OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_bench_smoke.cmake needs -D${var}=...")
  endif()
endforeach()

execute_process(
  COMMAND "${BENCH}" --spawn-relay "${RELAY}" --workload all --duration 1 --sessions 200 --preload 2000
  OUTPUT_FILE "${OUT}"
  ERROR_VARIABLE bench_stderr
  RESULT_VARIABLE bench_rc
  TIMEOUT 240)
message(STATUS "blindsync-bench stderr:\n${bench_stderr}")
if(NOT bench_rc EQUAL 0)
  file(READ "${OUT}" bench_stdout)
  message(FATAL_ERROR "blindsync-bench exited with '${bench_rc}'\nstdout:\n${bench_stdout}")
endif()

execute_process(
  COMMAND "${CHECKER}" "${OUT}" w1 w2 w3 w4 w5
  RESULT_VARIABLE check_rc)
if(NOT check_rc EQUAL 0)
  message(FATAL_ERROR "bench output check failed (${check_rc})")
endif()
