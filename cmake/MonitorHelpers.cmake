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

# monitor_add_test(NAME SOURCES... LIBS...): one Catch2 executable, registered
# test case by test case with ctest so failures are reported by name.
function(monitor_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE monitor_catch_main monitor_warnings ${ARG_LIBS})
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
