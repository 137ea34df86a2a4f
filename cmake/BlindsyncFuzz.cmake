# libFuzzer targets (clang only). Off by default; scripts/fuzz configures build/fuzz with
# -DBLINDSYNC_BUILD_FUZZERS=ON and clang, builds only the fuzz targets and runs them.
#
# Every fuzz binary is built with -fsanitize=fuzzer,address,undefined. The libraries it links
# are built with -fsanitize=fuzzer-no-link,address,undefined (blindsync_fuzz_instrument), so the
# code under test reports coverage and runs under the same sanitizers. UBSan does not recover:
# undefined behaviour is a crash the fuzzer keeps as an artifact.

set(BLINDSYNC_FUZZ_SANITIZERS "address,undefined")
set(BLINDSYNC_FUZZ_COMPILE_OPTIONS
  -fno-omit-frame-pointer -fno-sanitize-recover=all -g)

# blindsync_fuzz_instrument(blindsync_core ...): coverage + sanitizers for libraries under test.
function(blindsync_fuzz_instrument)
  foreach(target IN LISTS ARGN)
    target_compile_options(${target} PRIVATE
      -fsanitize=fuzzer-no-link,${BLINDSYNC_FUZZ_SANITIZERS} ${BLINDSYNC_FUZZ_COMPILE_OPTIONS})
  endforeach()
endfunction()

# blindsync_add_fuzzer(NAME decode_frame_fuzz SOURCES ... LIBS ... INCLUDES ...)
# A libFuzzer executable (libFuzzer provides main). Names are collected in the global property
# BLINDSYNC_FUZZERS, and the custom target `fuzzers` builds them all.
function(blindsync_add_fuzzer)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;LIBS;INCLUDES;DEFINITIONS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  blindsync_target_defaults(${ARG_NAME})
  target_compile_options(${ARG_NAME} PRIVATE
    -fsanitize=fuzzer,${BLINDSYNC_FUZZ_SANITIZERS} ${BLINDSYNC_FUZZ_COMPILE_OPTIONS})
  target_link_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer,${BLINDSYNC_FUZZ_SANITIZERS})
  # fuzz/fuzz_check.h (FUZZ_CHECK) for every target.
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/fuzz ${ARG_INCLUDES})
  target_compile_definitions(${ARG_NAME} PRIVATE ${ARG_DEFINITIONS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS})
  set_property(GLOBAL APPEND PROPERTY BLINDSYNC_FUZZERS ${ARG_NAME})
  if(NOT TARGET fuzzers)
    add_custom_target(fuzzers)
  endif()
  add_dependencies(fuzzers ${ARG_NAME})
endfunction()

# blindsync_add_fuzz_tool(NAME make_corpus SOURCES ... LIBS ...)
# A normal program (own main) that links instrumented libraries, e.g. the seed-corpus generator.
function(blindsync_add_fuzz_tool)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;LIBS;INCLUDES" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  blindsync_target_defaults(${ARG_NAME})
  target_compile_options(${ARG_NAME} PRIVATE
    -fsanitize=${BLINDSYNC_FUZZ_SANITIZERS} ${BLINDSYNC_FUZZ_COMPILE_OPTIONS})
  # The instrumented libraries call libFuzzer's coverage hooks; the sanitizer runtime defines them.
  target_link_options(${ARG_NAME} PRIVATE -fsanitize=${BLINDSYNC_FUZZ_SANITIZERS})
  target_include_directories(${ARG_NAME} PRIVATE ${ARG_INCLUDES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_LIBS})
  if(NOT TARGET fuzzers)
    add_custom_target(fuzzers)
  endif()
  add_dependencies(fuzzers ${ARG_NAME})
endfunction()
