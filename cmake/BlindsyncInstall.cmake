# `cmake --install <build> [--prefix P]` installs:
#   include/blindsync/<component>/...     each component's public headers (its include root)
#   <libdir>/libblindsync_<component>.a   the component libraries (or .so with BUILD_SHARED_LIBS)
#   <libdir>/libblindsync.so*             the C API as one shared library (only bs_* exported)
#   bin/blindsync-relay, bin/blindsync    the relay and the CLI, when built
#   <libdir>/cmake/blindsync/             find_package(blindsync): blindsync::core, ::auth, ::crypto,
#                                         ::client, ::transport_ws, ::c, ::c_shared
#   <libdir>/pkgconfig/blindsync.pc       the C++ libraries; blindsync-c.pc: the C API (.so)
# Everything is relocatable (the prefix may change at install time).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(blindsync_install_targets GLOBAL PROPERTY BLINDSYNC_COMPONENT_TARGETS)
get_property(blindsync_include_roots GLOBAL PROPERTY BLINDSYNC_INCLUDE_ROOTS)
if(TARGET blindsync_c_shared)
  list(APPEND blindsync_install_targets blindsync_c_shared)
endif()

install(TARGETS ${blindsync_install_targets}
  EXPORT blindsyncTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(root IN LISTS blindsync_include_roots)
  install(DIRECTORY ${root}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development
    FILES_MATCHING PATTERN "*.h")
endforeach()

foreach(program blindsync-relay blindsync)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
  endif()
endforeach()

# CMake package: targets + config + version.
set(blindsync_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/blindsync)
install(EXPORT blindsyncTargets
  NAMESPACE blindsync::
  FILE blindsyncTargets.cmake
  DESTINATION ${blindsync_cmake_dir}
  COMPONENT development)
# What a consumer must find: the link-only dependencies the installed static libraries export.
# Derived from the targets themselves, so a new dependency cannot be forgotten here.
set(blindsync_link_deps "")
foreach(target IN LISTS blindsync_install_targets)
  get_target_property(target_libs ${target} LINK_LIBRARIES)
  if(target_libs)
    list(APPEND blindsync_link_deps ${target_libs})
  endif()
endforeach()
set(BLINDSYNC_CONFIG_FIND_DEPENDENCIES "")
set(BLINDSYNC_PC_REQUIRES "")
if(blindsync_link_deps MATCHES "(^|;)Threads::Threads(;|$)")
  string(APPEND BLINDSYNC_CONFIG_FIND_DEPENDENCIES "find_dependency(Threads)\n")
endif()
if(blindsync_link_deps MATCHES "(^|;)SQLite::SQLite3(;|$)")
  string(APPEND BLINDSYNC_CONFIG_FIND_DEPENDENCIES "find_dependency(SQLite3)\n")
  list(APPEND BLINDSYNC_PC_REQUIRES sqlite3)
endif()
if(blindsync_link_deps MATCHES "(^|;)OpenSSL::")
  string(APPEND BLINDSYNC_CONFIG_FIND_DEPENDENCIES "find_dependency(OpenSSL)\n")
  list(APPEND BLINDSYNC_PC_REQUIRES openssl)
endif()
if(blindsync_link_deps MATCHES "(^|;)PkgConfig::sodium(;|$)")
  set(BLINDSYNC_CONFIG_NEEDS_SODIUM ON)
  list(APPEND BLINDSYNC_PC_REQUIRES libsodium)
else()
  set(BLINDSYNC_CONFIG_NEEDS_SODIUM OFF)
endif()
list(JOIN BLINDSYNC_PC_REQUIRES " " BLINDSYNC_PC_REQUIRES)

configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/blindsyncConfig.cmake.in
  ${PROJECT_BINARY_DIR}/blindsyncConfig.cmake
  INSTALL_DESTINATION ${blindsync_cmake_dir})
# 0.x: a minor version may break the API.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/blindsyncConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/blindsyncConfig.cmake
  ${PROJECT_BINARY_DIR}/blindsyncConfigVersion.cmake
  DESTINATION ${blindsync_cmake_dir}
  COMPONENT development)

# pkg-config. prefix is computed from the .pc file's own location, so --prefix at install time works.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(BLINDSYNC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(BLINDSYNC_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH blindsync_pc_up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
  string(REGEX REPLACE "/$" "" blindsync_pc_up "${blindsync_pc_up}")
  set(BLINDSYNC_PC_PREFIX "\${pcfiledir}/${blindsync_pc_up}")
  set(BLINDSYNC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(BLINDSYNC_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(BLINDSYNC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# Dependents first, for static linking order.
set(BLINDSYNC_PC_LIBS "")
foreach(component c transport_ws client crypto auth core)
  if(TARGET blindsync_${component})
    string(APPEND BLINDSYNC_PC_LIBS " -lblindsync_${component}")
  endif()
endforeach()
# Static archives need their dependencies on every link; shared ones only for static linking.
if(BUILD_SHARED_LIBS)
  set(BLINDSYNC_PC_REQUIRES_FIELD "Requires.private")
else()
  set(BLINDSYNC_PC_REQUIRES_FIELD "Requires")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/blindsync.pc.in ${PROJECT_BINARY_DIR}/blindsync.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/blindsync.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT development)
if(TARGET blindsync_c_shared)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/blindsync-c.pc.in ${PROJECT_BINARY_DIR}/blindsync-c.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/blindsync-c.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT development)
endif()
