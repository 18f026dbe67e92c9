/* src/status.c - status codes, and the one error model: each thread's last error and message.
 *
 * The rule (nalloc.h, "Errors"): a public call that fails records its status and a message that
 * names the call and the cause; a call that succeeds touches neither. So they are recorded in one
 * place, the public function's failure exit (na_fail), never by the helpers it calls: helpers
 * return a status, and where the status alone does not say why (which system call, which CUDA
 * call, which limit), they note a cause (na_cause) that the public call's message carries
 * (na_fail_cause). Public calls that pass causes on start with a clean slate (na_cause_clear), and
 * only they read the cause, so a message never carries another call's cause.
 *
 * Formatting happens only on failure, and with a formatter of our own (na_format): vsnprintf is
 * not async-signal-safe, and a failing nalloc_alloc in a signal handler may not call it.
 *
 * Where the text lives. The message, the cause and the CUDA text are most of a kilobyte per
 * thread. As thread-locals they would be part of the library's TLS block, and a library that
 * uses the initial-exec model anywhere (internal.h, NA_THREAD_LOCAL: the allocation path's slot
 * cache) has its whole block placed in glibc's static TLS surplus when it is loaded with dlopen,
 * a few hundred bytes shared by every such library; a kilobyte there makes dlopen fail. Giving the
 * buffers the default TLS model would not help: the model is chosen per access, the block's
 * placement per library. So a thread's text lives in a page mapped on its first failure (mmap is
 * a system call, usable in a signal handler), reached through one thread-local pointer, and
 * unmapped when the thread exits (stats.c's thread-exit hook). Until then, and if the page cannot
 * be had, the message is the status's text.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct thread_text {
    char message[320];    /* the last failure's message; "" after a clear */
    char cuda[224];       /* the CUDA cause of the last failure, or "" */
    char cause[224];      /* noted by a helper, not yet used; "" if none */
    char errno_text[96];  /* na_errno_text's buffer */
    bool cause_is_cuda;
} thread_text;

static NA_THREAD_LOCAL nalloc_status last_error = NALLOC_OK;
static NA_THREAD_LOCAL thread_text *text; /* NULL until the thread's first failure or cause */

static void append(char *buf, size_t len, size_t *at, const char *from);

/* The thread exits (thread.c): its page goes. */
static void release_text(size_t token)
{
    (void)token;
    thread_text *t = text;
    text = NULL;
    if (t != NULL)
        munmap(t, sizeof *t);
}

/* The thread's text, mapped on first use; NULL if the OS refused. */
static thread_text *my_text(void)
{
    if (na_likely(text != NULL))
        return text;
    int err = errno;
    void *p = mmap(NULL, sizeof(thread_text), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    errno = err;
    if (p == MAP_FAILED)
        return NULL;
    text = p; /* zeroed: every string "" */
    if (last_error != NALLOC_OK) { /* a failure before had no page: keep what the message said */
        size_t at = 0;
        append(text->message, sizeof text->message, &at, nalloc_strerror(last_error));
    }
    /* Unmapped when the thread exits. After the thread's first allocation this makes no pthread
     * call (thread.c), so a failure in a signal handler stays async-signal-safe. */
    na_thread_at_exit(NA_THREAD_EXIT_TEXT, release_text);
    (void)na_thread_token();
    return text;
}

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

const char *nalloc_last_error_message(void)
{
    if (text != NULL)
        return text->message;
    return last_error == NALLOC_OK ? "" : nalloc_strerror(last_error); /* no page for the text */
}

void nalloc_last_error_clear(void)
{
    last_error = NALLOC_OK;
    if (text != NULL) {
        text->message[0] = '\0';
        text->cuda[0] = '\0';
    }
    na_cause_clear();
}

const char *na_last_cuda_text(void)
{
    return text != NULL ? text->cuda : "";
}

/* ---------------------------------------------------------------------------------------------
 * Formatting, async-signal-safe
 * ------------------------------------------------------------------------------------------- */

/* Append `text` to buf[0..len), which holds `*at` bytes and a NUL; truncate at len - 1. */
static void append(char *buf, size_t len, size_t *at, const char *from)
{
    while (*from != '\0' && *at + 1 < len)
        buf[(*at)++] = *from++;
    buf[*at] = '\0';
}

static void append_unsigned(char *buf, size_t len, size_t *at, unsigned long long v)
{
    char digits[24];
    size_t n = sizeof digits;
    digits[--n] = '\0';
    do {
        digits[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    append(buf, len, at, digits + n);
}

size_t na_format(char *buf, size_t len, size_t at, const char *fmt, va_list args)
{
    for (const char *f = fmt; *f != '\0' && at + 1 < len; f++) {
        if (*f != '%') {
            buf[at++] = *f;
            continue;
        }
        f++;
        if (*f == 's') {
            const char *s = va_arg(args, const char *);
            append(buf, len, &at, s != NULL ? s : "(null)");
        } else if (*f == 'z' && f[1] == 'u') {
            f++;
            append_unsigned(buf, len, &at, va_arg(args, size_t));
        } else if (*f == 'u') {
            append_unsigned(buf, len, &at, va_arg(args, unsigned));
        } else if (*f == 'd') {
            int v = va_arg(args, int);
            if (v < 0)
                append(buf, len, &at, "-");
            append_unsigned(buf, len, &at, v < 0 ? 0ull - (unsigned long long)v : (unsigned)v);
        } else if (*f == 'l' && f[1] == 'l' && f[2] == 'u') {
            f += 2;
            append_unsigned(buf, len, &at, va_arg(args, unsigned long long));
        } else if (*f == '%') {
            append(buf, len, &at, "%");
        } else { /* not a conversion we know: a bug in a format of ours */
            na_assert(false);
            break;
        }
    }
    buf[at] = '\0';
    return at;
}

size_t na_format_to(char *buf, size_t len, size_t at, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    at = na_format(buf, len, at, fmt, args);
    va_end(args);
    return at;
}

const char *na_errno_text(int err)
{
    thread_text *t = my_text();
    if (t == NULL)
        return "(no memory for the text)";
    /* The GNU strerror_r (_GNU_SOURCE): returns either the buffer or a static string. */
    const char *s = strerror_r(err, t->errno_text, sizeof t->errno_text);
    return s != NULL ? s : "unknown error";
}

/* ---------------------------------------------------------------------------------------------
 * Causes and failures
 * ------------------------------------------------------------------------------------------- */

static void note(bool is_cuda, const char *fmt, va_list args)
{
    thread_text *t = my_text();
    if (t == NULL)
        return;
    int err = errno;
    char copy[sizeof t->cause]; /* a cause may quote the errno text, in the same page */
    na_format(copy, sizeof copy, 0, fmt, args);
    memcpy(t->cause, copy, sizeof copy);
    t->cause_is_cuda = is_cuda;
    errno = err;
}

void na_cause(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    note(false, fmt, args);
    va_end(args);
}

void na_cause_cuda(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    note(true, fmt, args);
    va_end(args);
}

void na_cause_clear(void)
{
    if (text != NULL) {
        text->cause[0] = '\0';
        text->cause_is_cuda = false;
    }
}

bool na_cause_pending(void)
{
    return text != NULL && text->cause[0] != '\0';
}

/* Record the failure: "<call>: <fmt...>[: <cause>]", the cause only when `with_cause`. */
static nalloc_status record(nalloc_status status, const char *call, bool with_cause,
                            const char *fmt, va_list args)
{
    na_assert(status != NALLOC_OK);
    last_error = status;
    thread_text *t = my_text();
    if (t == NULL)
        return status; /* the message falls back to the status's text */
    int err = errno; /* NALLOC_ERR_OS promises errno */
    bool cause_used = with_cause && t->cause[0] != '\0';
    char *m = t->message;
    size_t at = 0, len = sizeof t->message;
    append(m, len, &at, call);
    append(m, len, &at, ": ");
    if (fmt != NULL && fmt[0] != '\0') {
        at = na_format(m, len, at, fmt, args);
        if (cause_used)
            append(m, len, &at, ": ");
    } else if (!cause_used) {
        append(m, len, &at, nalloc_strerror(status));
    }
    if (cause_used)
        append(m, len, &at, t->cause);
    at = 0;
    t->cuda[0] = '\0';
    if (cause_used && t->cause_is_cuda)
        append(t->cuda, sizeof t->cuda, &at, t->cause);
    na_cause_clear();
    errno = err;
    return status;
}

nalloc_status na_fail(nalloc_status status, const char *call, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    record(status, call, false, fmt, args);
    va_end(args);
    return status;
}

nalloc_status na_fail_cause(nalloc_status status, const char *call, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    record(status, call, true, fmt, args);
    va_end(args);
    return status;
}

void na_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "nalloc: internal assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
