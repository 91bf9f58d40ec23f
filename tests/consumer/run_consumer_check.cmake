# Installs the built libmonitor into a scratch prefix, builds tests/consumer
# against it with find_package(monitor), and runs both programs.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${WORK_DIR}/prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "install failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build -G Ninja
                        -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed")
endif()
string(RANDOM LENGTH 8 suffix)
foreach(prog consumer_c consumer_cpp)
  execute_process(COMMAND ${CMAKE_COMMAND} -E env MONITOR_RING=/consumer-${suffix} ${WORK_DIR}/build/${prog}
                  RESULT_VARIABLE rc)
  if(rc)
    file(REMOVE /dev/shm/consumer-${suffix})
    message(FATAL_ERROR "${prog} failed")
  endif()
endforeach()
file(REMOVE /dev/shm/consumer-${suffix})
