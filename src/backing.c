/* src/backing.c - which backing gives an arena of each nalloc_memory its memory.
 *
 * The one place that lists the backings (contract in backing.h), so that arena logic names none
 * of them and a backing added to the build is one file plus its line here.
 */
#include "backing.h"

const na_backing *na_backing_for(nalloc_memory memory)
{
    switch (memory) {
    case NALLOC_MEMORY_HOST:
        return &na_backing_host;
#if NALLOC_HAVE_CUDA
    case NALLOC_MEMORY_PINNED:
        return &na_backing_pinned;
    case NALLOC_MEMORY_DEVICE:
        return &na_backing_device;
#endif
    default:
        return NULL;
    }
}
