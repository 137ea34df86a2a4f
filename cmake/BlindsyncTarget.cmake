# Per-target settings shared by every blindsync target: C++20, warnings, hidden visibility.
function(blindsync_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  set_target_properties(${target} PROPERTIES
    CXX_EXTENSIONS OFF
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  target_compile_options(${target} PRIVATE
    $<$<CXX_COMPILER_ID:GNU,Clang>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor>)
  # Boost 1.74's Asio only detects C++20 coroutines on clang through __cpp_coroutines and
  # <experimental/coroutine> (libc++ / -fcoroutines-ts). Clang 14 in C++20 mode with libstdc++
  # has neither, only <coroutine>, so co_await support must be switched on by hand; without it the
  # relay (and every Asio coroutine) does not compile with clang, e.g. in the tsan preset.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    target_compile_definitions(${target} PRIVATE BOOST_ASIO_HAS_CO_AWAIT=1 BOOST_ASIO_HAS_STD_COROUTINE=1)
  endif()
endfunction()

# add_blindsync_component(NAME core SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ...)
# Makes library blindsync_<NAME> with alias blindsync::<NAME> and include root
# libsync/<NAME>/include.
function(add_blindsync_component)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target blindsync_${ARG_NAME})
  add_library(${target} ${ARG_SOURCES})
  add_library(blindsync::${ARG_NAME} ALIAS ${target})
  blindsync_target_defaults(${target})
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:include>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  # A static library's private dependencies are exported as link-only dependencies, which an
  # installed consumer must then find. Header-only ones add nothing at link time: keep them out.
  list(TRANSFORM ARG_PRIVATE_DEPS REPLACE "^(Boost::headers|nlohmann_json::nlohmann_json)$" "$<BUILD_INTERFACE:\\1>")
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_NAME} OUTPUT_NAME blindsync_${ARG_NAME})
  # For cmake/BlindsyncInstall.cmake: every component is installed and exported, with its include root.
  set_property(GLOBAL APPEND PROPERTY BLINDSYNC_COMPONENT_TARGETS ${target})
  set_property(GLOBAL APPEND PROPERTY BLINDSYNC_INCLUDE_ROOTS ${CMAKE_CURRENT_SOURCE_DIR}/include)
endfunction()
