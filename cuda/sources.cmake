# cuda/sources.cmake - the CUDA parts of the nalloc library, included by the top-level
# CMakeLists.txt when NALLOC_HAVE_CUDA. Plain CUDA runtime calls live in .c files compiled by the
# C compiler (as RMM and CHOLMOD do); only kernels and Thrust glue are .cu.
target_sources(nalloc PRIVATE
  cuda/cuda_common.c
  cuda/device.c
  cuda/pinned.c
  cuda/staging.c
  cuda/window.c
  cuda/wipe.cu
  cuda/wipe_async.c)
# NALLOC_HAVE_CUDA and NALLOC_HAVE_NVTX reach the sources through nalloc/config.h (0 or 1).
target_include_directories(nalloc PRIVATE cuda)
target_link_libraries(nalloc PUBLIC CUDA::cudart)
set_target_properties(nalloc PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
if(NALLOC_HAVE_NVTX)
  target_sources(nalloc PRIVATE cuda/nvtx.c)
  target_link_libraries(nalloc PRIVATE CUDA::nvtx3)
endif()

# No register spills on the device paths (the wipe kernel, and the in-kernel allocation paths of
# nalloc/device.cuh as instantiated by cuda/spill_probe.cu): ptxas reports a spill as a warning,
# and the warning as an error, so a spill fails the build for every architecture built.
set(NALLOC_PTXAS_NO_SPILLS "-Xptxas=--warn-on-spills,--warning-as-error")
set_source_files_properties(cuda/wipe.cu PROPERTIES COMPILE_OPTIONS "${NALLOC_PTXAS_NO_SPILLS}")
add_library(nalloc_spill_probe OBJECT cuda/spill_probe.cu)
target_include_directories(nalloc_spill_probe PRIVATE ${PROJECT_SOURCE_DIR}/include
                                                      ${PROJECT_BINARY_DIR}/include)
target_compile_options(nalloc_spill_probe PRIVATE ${NALLOC_PTXAS_NO_SPILLS})
nalloc_target_defaults(nalloc_spill_probe)
