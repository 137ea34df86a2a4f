# Third-party packages, found once for the whole tree (Debian 12 package names in scripts/install-deps).
find_package(PkgConfig REQUIRED)
pkg_check_modules(sodium REQUIRED IMPORTED_TARGET libsodium)
find_package(msgpackc-cxx CONFIG REQUIRED NAMES msgpack msgpackc-cxx)
find_package(SQLite3 REQUIRED)
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(tomlplusplus REQUIRED)  # relay.toml
find_package(OpenSSL REQUIRED)       # wss:// (relay server, transport_ws client)
pkg_check_modules(qrencode REQUIRED IMPORTED_TARGET libqrencode)
