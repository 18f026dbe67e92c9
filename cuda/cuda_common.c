/* cuda/cuda_common.c - CUDA error mapping and driver/device detection (contract in
 * cuda_internal.h). */
#include "cuda_internal.h"

#include "nalloc/cuda.h"

#include <stdio.h>

static NA_THREAD_LOCAL char last_text[160];

/* Errors that mean "no usable driver or device", as opposed to a failed call on a working one. */
static bool means_no_device(cudaError_t err)
{
    switch (err) {
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorStubLibrary:
    case cudaErrorCallRequiresNewerDriver:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
        return true;
    default:
        return false;
    }
}

nalloc_status na_cuda_status(cudaError_t err, const char *what)
{
    if (err == cudaSuccess)
        return NALLOC_OK;
    snprintf(last_text, sizeof last_text, "%s: %s (%s)", what, cudaGetErrorString(err),
             cudaGetErrorName(err));
    (void)cudaGetLastError(); /* clear the non-sticky error state */
    return na_set_error(means_no_device(err) ? NALLOC_ERR_NO_DEVICE : NALLOC_ERR_CUDA);
}

static nalloc_status ready_status = NALLOC_ERR_NO_DEVICE;
static char ready_text[160];
static pthread_once_t ready_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err == cudaSuccess && count == 0)
        err = cudaErrorNoDevice;
    ready_status = na_cuda_status(err, "cudaGetDeviceCount");
    if (ready_status != NALLOC_OK)
        snprintf(ready_text, sizeof ready_text, "%s", last_text);
}

nalloc_status na_cuda_ready(void)
{
    pthread_once(&ready_once, probe);
    if (ready_status != NALLOC_OK) {
        snprintf(last_text, sizeof last_text, "%s", ready_text);
        return na_set_error(ready_status);
    }
    return NALLOC_OK;
}

const char *nalloc_cuda_error_string(void)
{
    return last_text;
}

nalloc_status nalloc_cuda_available(void)
{
    return na_cuda_ready();
}

nalloc_status nalloc_wipe_async(nalloc_arena *arena, cudaStream_t stream)
{
    /* NULL means "synchronous" to the backings; stream 0 is the legacy default stream. */
    return na_arena_wipe(arena, stream != NULL ? (void *)stream : (void *)cudaStreamLegacy);
}
