# Shared compile settings and helpers; nothing here touches CMAKE_CXX_FLAGS.

add_library(monitor_warnings INTERFACE)
target_compile_features(monitor_warnings INTERFACE cxx_std_20)
# CXXOPTS_NO_REGEX: cxxopts' std::regex parser cost each file that declares
# options 10-15 s of compiling (it was most of monitorctl's build); its
# hand-written parser accepts the same flags.
target_compile_definitions(monitor_warnings INTERFACE MONITOR_CPP_API=1 CXXOPTS_NO_REGEX)
target_compile_options(monitor_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  $<$<BOOL:${MONITOR_WERROR}>:-Werror>)

# monitor_precompile_headers(TARGET HEADER...): the heavy headers most of a
# target's files include, parsed once per target instead of once per file
# (about a third of the build: CI's 30 minutes are bound by compiling on two
# cores). Only for targets of many files: each header set costs a few
# seconds to build.
function(monitor_precompile_headers target)
  target_precompile_headers(${target} PRIVATE ${ARGN})
  # Through a precompiled header GCC 12 reports its known false positives on
  # std::string's inlined copies (GCC bugs 105651, 105329), which it keeps
  # quiet when the same system header is included the ordinary way.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wno-array-bounds -Wno-stringop-overflow)
  endif()
endfunction()

# monitor_add_test(NAME SOURCES... LIBS...): one Catch2 executable, registered
# test case by test case with ctest so failures are reported by name.
function(monitor_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE monitor_catch_main monitor_warnings ${ARG_LIBS})
  monitor_precompile_headers(${name} <catch2/catch.hpp> <boost/json.hpp> <fmt/format.h>
    <chrono> <filesystem> <map> <string> <thread> <vector>)
  # --warn NoTests: a name ctest mangles (a ';' splits it) fails instead of
  # passing with no test run. Test names must not contain ';'.
  catch_discover_tests(${name} EXTRA_ARGS --warn NoTests PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

# monitor_add_bench(NAME SOURCES... LIBS...)
function(monitor_add_bench name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE benchmark::benchmark monitor_warnings ${ARG_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
endfunction()
