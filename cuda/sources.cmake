# cuda/sources.cmake - the CUDA parts of the nalloc library, included by the top-level
# CMakeLists.txt when NALLOC_HAVE_CUDA. Plain CUDA runtime calls live in .c files compiled by the
# C compiler (as RMM and CHOLMOD do); only kernels and Thrust glue are .cu.
target_sources(nalloc PRIVATE
  cuda/cuda_common.c
  cuda/device.c
  cuda/pinned.c)
target_include_directories(nalloc PRIVATE cuda)
target_compile_definitions(nalloc PRIVATE NALLOC_HAVE_CUDA)
target_link_libraries(nalloc PUBLIC CUDA::cudart)
set_target_properties(nalloc PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
if(NALLOC_NVTX AND EXISTS ${PROJECT_SOURCE_DIR}/cuda/nvtx.c)
  target_sources(nalloc PRIVATE cuda/nvtx.c)
  target_compile_definitions(nalloc PRIVATE NALLOC_HAVE_NVTX)
  target_link_libraries(nalloc PRIVATE CUDA::nvtx3)
endif()
