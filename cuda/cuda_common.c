/* cuda/cuda_common.c - CUDA error mapping and driver/device detection (contract in
 * cuda_internal.h). */
#include "cuda_internal.h"

#include "nalloc/cuda.h"

#include <stdio.h>

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
    na_cause_cuda("%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
    (void)cudaGetLastError(); /* clear the non-sticky error state */
    return means_no_device(err) ? NALLOC_ERR_NO_DEVICE : NALLOC_ERR_CUDA;
}

static nalloc_status ready_status = NALLOC_ERR_NO_DEVICE;
static char ready_text[160]; /* why not, when not */
static pthread_once_t ready_once = PTHREAD_ONCE_INIT;

static void probe(void)
{
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err == cudaSuccess && count == 0)
        err = cudaErrorNoDevice;
    if (err != cudaSuccess) {
        snprintf(ready_text, sizeof ready_text, "cudaGetDeviceCount: %s (%s)",
                 cudaGetErrorString(err), cudaGetErrorName(err));
        (void)cudaGetLastError();
    }
    ready_status = err == cudaSuccess         ? NALLOC_OK
                   : means_no_device(err)     ? NALLOC_ERR_NO_DEVICE
                                              : NALLOC_ERR_CUDA;
}

nalloc_status na_cuda_ready(void)
{
    pthread_once(&ready_once, probe);
    if (ready_status != NALLOC_OK)
        na_cause_cuda("%s", ready_text);
    return ready_status;
}

const char *nalloc_cuda_error_string(void)
{
    return na_last_cuda_text();
}

nalloc_status nalloc_cuda_available(void)
{
    na_cause_clear();
    nalloc_status st = na_cuda_ready();
    return st == NALLOC_OK ? st : na_fail_cause(st, "nalloc_cuda_available", NULL);
}
