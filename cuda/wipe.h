/* cuda/wipe.h - the device wipe kernel's launcher (cuda/wipe.cu), callable from C. */
#ifndef NALLOC_CUDA_WIPE_H
#define NALLOC_CUDA_WIPE_H

#include <cuda_runtime_api.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Enqueue a kernel on `stream` that zeroes the device bytes [p, p + len), any alignment and any
 * length, on `device` (which must be the current device). Returns the launch's status without
 * waiting; len == 0 launches nothing. */
cudaError_t na_cuda_wipe(int device, void *p, size_t len, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* NALLOC_CUDA_WIPE_H */
