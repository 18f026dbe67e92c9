/* cuda/cuda_internal.h - what the CUDA layer's files share.
 *
 * The CUDA layer is thin and C-callable: backings for pinned and device arenas, the wipe and
 * window kernels, NVTX annotations. Every CUDA runtime call's result goes through na_cuda_status,
 * which turns "there is no driver or no device" into NALLOC_ERR_NO_DEVICE, anything else into
 * NALLOC_ERR_CUDA, and keeps the CUDA error's name and text for nalloc_cuda_error_string().
 */
#ifndef NALLOC_CUDA_INTERNAL_H
#define NALLOC_CUDA_INTERNAL_H

#include "internal.h"

#include <cuda_runtime_api.h>

/* NALLOC_OK for cudaSuccess; otherwise the matching status, recorded as this thread's last error
 * together with the CUDA error's text. `what` names the call, for the text. The sticky CUDA error
 * state is cleared (cudaGetLastError) so that one failure does not poison later calls. */
nalloc_status na_cuda_status(cudaError_t err, const char *what);

/* NALLOC_OK when a driver and at least one device are usable (checked once, then cached);
 * NALLOC_ERR_NO_DEVICE otherwise. Cheap after the first call. */
nalloc_status na_cuda_ready(void);

#endif /* NALLOC_CUDA_INTERNAL_H */
