# tests/install_cuda_examples.cmake - install nalloc into a scratch prefix, then build the CUDA
# examples of docs/cuda.md (the ```cuda blocks after an <!-- example:cuda-NAME --> marker: pinned
# staging, Thrust and CUB) with nvcc against the installed tree alone, the way a prover's build
# would, and run them when a device is present (exit 77 from an example means "no device").
# Run by ctest as: cmake -DBUILD_DIR=... -DPREFIX=... -DLIBDIR=... -DDOC=... -DNVCC=...
#   -P install_cuda_examples.cmake
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

file(READ "${DOC}" text)
set(found 0)
foreach(name staging thrust)
  string(FIND "${text}" "<!-- example:cuda-${name}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${DOC} has no example:cuda-${name} block")
  endif()
  string(SUBSTRING "${text}" ${at} -1 rest)
  string(FIND "${rest}" "```cuda\n" open)
  math(EXPR open "${open} + 8")
  string(SUBSTRING "${rest}" ${open} -1 rest)
  string(FIND "${rest}" "\n```" close)
  string(SUBSTRING "${rest}" 0 ${close} code)
  file(WRITE "${PREFIX}/example_${name}.cu" "${code}\n")

  # One architecture (with PTX for newer GPUs) keeps this to seconds; warnings are errors, so
  # the installed headers stay clean under a strict consumer.
  execute_process(
    COMMAND "${NVCC}" -std=c++17 -arch=sm_80 -Werror all-warnings -Xcompiler=-Wall,-Wextra
            -I "${PREFIX}/include" "${PREFIX}/example_${name}.cu" -o "${PREFIX}/example_${name}"
            -L "${PREFIX}/${LIBDIR}" -lnalloc -Xlinker -rpath -Xlinker "${PREFIX}/${LIBDIR}"
    RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "example cuda-${name} of ${DOC} did not build against the installed nalloc")
  endif()
  execute_process(COMMAND "${PREFIX}/example_${name}" RESULT_VARIABLE rc)
  if(rc EQUAL 77)
    message(STATUS "cuda-${name}: built and linked against the install tree; no device to run it")
  elseif(rc)
    message(FATAL_ERROR "example cuda-${name} of ${DOC} failed (${rc})")
  endif()
endforeach()
