# tests/thrust_install.cmake - install nalloc into a scratch prefix, then compile and link a
# Thrust program (tests/thrust_consumer.cu) with nvcc against the installed tree alone, and run
# it when a device is present. Run by ctest as: cmake -DBUILD_DIR=... -DPREFIX=... -DLIBDIR=...
#   -DSOURCE=... -DNVCC=... -P thrust_install.cmake
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed (${rc})")
endif()
foreach(header nalloc.h cuda.h thrust.cuh bump.h config.h)
  if(NOT EXISTS "${PREFIX}/include/nalloc/${header}")
    message(FATAL_ERROR "nalloc/${header} was not installed")
  endif()
endforeach()

# One architecture (with PTX for newer GPUs) keeps this to seconds; warnings are errors, so the
# installed headers stay clean under a strict consumer.
execute_process(
  COMMAND "${NVCC}" -std=c++17 -arch=sm_80 -Werror all-warnings -Xcompiler=-Wall,-Wextra
          -I "${PREFIX}/include" "${SOURCE}" -o "${PREFIX}/thrust_consumer"
          -L "${PREFIX}/${LIBDIR}" -lnalloc -Xlinker -rpath -Xlinker "${PREFIX}/${LIBDIR}"
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the Thrust program did not build against the installed nalloc")
endif()

execute_process(COMMAND "${PREFIX}/thrust_consumer" RESULT_VARIABLE rc)
if(rc EQUAL 77)
  message(STATUS "built and linked against the install tree; no device here to run it")
elseif(rc)
  message(FATAL_ERROR "the Thrust program failed (${rc})")
endif()
