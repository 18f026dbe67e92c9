/* src/status.c - status codes, the thread's last error, internal assertion failures. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static NA_THREAD_LOCAL nalloc_status last_error = NALLOC_OK;

const char *nalloc_strerror(nalloc_status status)
{
    switch (status) {
    case NALLOC_OK:
        return "success";
    case NALLOC_ERR_INVALID:
        return "invalid argument or configuration";
    case NALLOC_ERR_NOMEM:
        return "arena exhausted";
    case NALLOC_ERR_OS:
        return "the operating system refused (see errno)";
    case NALLOC_ERR_CUDA:
        return "a CUDA call failed";
    case NALLOC_ERR_NO_DEVICE:
        return "no CUDA driver or device";
    case NALLOC_ERR_UNSUPPORTED:
        return "not supported by this build or kernel";
    case NALLOC_ERR_STATE:
        return "stale mark, wrong arena, destroyed object or not the last block";
    }
    return "unknown nalloc status";
}

nalloc_status nalloc_last_error(void)
{
    return last_error;
}

/* Set with every failure. Issue 13 makes every failure site name its call and cause; until
 * then the message is the status text. */
static NA_THREAD_LOCAL const char *last_message = "";

const char *nalloc_last_error_message(void)
{
    return last_message;
}

nalloc_status na_set_error(nalloc_status status)
{
    last_error = status;
    if (status != NALLOC_OK)
        last_message = nalloc_strerror(status);
    return status;
}

void na_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "nalloc: internal assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
