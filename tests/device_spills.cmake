# tests/device_spills.cmake - does the build's no-spill check really catch spills?
#
# cuda/sources.cmake compiles the wipe kernel and the in-kernel allocation paths with ptxas told
# to warn on spills and to treat warnings as errors. That check is only as good as the toolkit's
# handling of those flags, so this test (run by ctest as `cmake -P`) builds a kernel that spills
# on purpose: it must compile without the flags and fail with them, naming the spill.
#
# Variables: NVCC (the CUDA compiler), FLAGS (the no-spill flags, ;-separated), SAMPLE (the .cu),
# ARCH (one real architecture, e.g. 90), OUT (a scratch directory).
foreach(v NVCC FLAGS SAMPLE ARCH OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "device_spills.cmake: ${v} is not set")
  endif()
endforeach()
file(MAKE_DIRECTORY ${OUT})
set(common -c -arch=sm_${ARCH} -maxrregcount=24 ${SAMPLE} -o ${OUT}/spill_sample.o)

execute_process(COMMAND ${NVCC} ${common} -Xptxas=-v
                RESULT_VARIABLE plain_rc OUTPUT_VARIABLE plain_out ERROR_VARIABLE plain_out)
if(NOT plain_rc EQUAL 0)
  message(FATAL_ERROR "the spill sample does not even compile without the check:\n${plain_out}")
endif()
if(NOT plain_out MATCHES "[1-9][0-9]* bytes spill stores")
  message(FATAL_ERROR "the sample no longer spills on sm_${ARCH}; make it spill again:\n${plain_out}")
endif()

execute_process(COMMAND ${NVCC} ${common} ${FLAGS}
                RESULT_VARIABLE checked_rc OUTPUT_VARIABLE checked_out ERROR_VARIABLE checked_out)
if(checked_rc EQUAL 0)
  message(FATAL_ERROR "a kernel that spills compiled with the no-spill flags (${FLAGS}): "
                      "the build's spill check is not working")
endif()
if(NOT checked_out MATCHES "spill")
  message(FATAL_ERROR "the checked build failed, but not because of the spill:\n${checked_out}")
endif()
message(STATUS "sm_${ARCH}: a spilling kernel is refused by the no-spill flags, as it must be")
