/* src/options.c - every tunable in one table, each overridable from the environment.
 *
 * An option's value is its default below unless NALLOC_<NAME> is set in the environment to a
 * number, optionally with a binary suffix, in either case (k or K, m or M, g or G: 2^10, 2^20,
 * 2^30). The environment is read once, on first use. Every option has a range of values that
 * leave nalloc usable: a value outside it, or one that does not parse, or one that is not a power
 * of two where one is required, is ignored with one warning on stderr that names the variable
 * and what it accepts, and the default stays. (A guard of 2^64 - 1 bytes or a host alignment of a
 * gigabyte would make every later creation or allocation fail, far from its cause.) Options only
 * supply defaults: nalloc_arena_config_init copies them into the config, where the caller may
 * override them.
 */
#include "internal.h"
#include "parse_size.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct option_desc {
    const char *name;  /* the environment variable is NALLOC_<name> */
    size_t value;      /* the default, then the value in force */
    size_t min, max;   /* the accepted range, inclusive */
    bool power_of_two; /* the value must be a power of two */
    const char *unit;  /* for the warning: "bytes", or "" for a switch */
} option_desc;

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)
#define TIB ((size_t)1 << 40)

static option_desc options[NA_OPTION_COUNT] = {
    /* print stats on destroy */
    [NA_OPTION_VERBOSE] = {"VERBOSE", 0, 0, 1, false, ""},
    /* a cache line; AVX-512. At most a page: every small block pays it */
    [NA_OPTION_HOST_ALIGN] = {"HOST_ALIGN", 64, 1, 4 * KIB, true, "bytes"},
    /* what cudaMalloc guarantees */
    [NA_OPTION_DEVICE_ALIGN] = {"DEVICE_ALIGN", 256, 1, 4 * KIB, true, "bytes"},
    /* 1 MiB; 0 would give every block the large alignment */
    [NA_OPTION_LARGE_THRESHOLD] = {"LARGE_THRESHOLD", MIB, 1, SIZE_MAX, false, "bytes"},
    /* a page; up to a 1 GiB huge page */
    [NA_OPTION_LARGE_ALIGN] = {"LARGE_ALIGN", 4 * KIB, 64, GIB, true, "bytes"},
    /* 0: one page */
    [NA_OPTION_GUARD_SIZE] = {"GUARD_SIZE", 0, 0, GIB, false, "bytes"},
    /* 256 MiB */
    [NA_OPTION_DEVICE_SLACK] = {"DEVICE_SLACK", 256 * MIB, 0, TIB, false, "bytes"},
    /* 1 GiB; 0: the whole arena in one call */
    [NA_OPTION_PIN_CHUNK] = {"PIN_CHUNK", GIB, 0, TIB, false, "bytes"},
    /* 1: no warning when LOCK, NODUMP or SECRET is refused (arena.c) */
    [NA_OPTION_QUIET_PROTECTIONS] = {"QUIET_PROTECTIONS", 0, 0, 1, false, ""},
    /* 64 MiB: what the prefault helper keeps faulted in beyond each arena's offset, at least; at
     * least a huge page, so that stretches can be huge pages */
    [NA_OPTION_PREFAULT_AHEAD] = {"PREFAULT_AHEAD", 64 * MIB, 2 * MIB, SIZE_MAX, false, "bytes"},
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* "a power of two from 1 to 4096 bytes", "0 or 1", "a size from 0 to 1099511627776 bytes". */
static void describe_range(const option_desc *o, char *buf, size_t len)
{
    if (o->unit[0] == '\0')
        snprintf(buf, len, "%zu or %zu", o->min, o->max);
    else if (o->max == SIZE_MAX)
        snprintf(buf, len, "%s of at least %zu %s (suffix k, m or g)",
                 o->power_of_two ? "a power of two" : "a size", o->min, o->unit);
    else
        snprintf(buf, len, "%s from %zu to %zu %s (suffix k, m or g)",
                 o->power_of_two ? "a power of two" : "a size", o->min, o->max, o->unit);
}

static void read_environment(void)
{
    for (int i = 0; i < NA_OPTION_COUNT; i++) {
        option_desc *o = &options[i];
        char var[64];
        snprintf(var, sizeof var, "NALLOC_%s", o->name);
        const char *text = getenv(var);
        size_t v;
        if (text == NULL)
            continue;
        if (na_parse_size(text, 30, &v) && v >= o->min && v <= o->max &&
            (!o->power_of_two || nalloc_is_pow2(v))) {
            o->value = v;
            continue;
        }
        char range[128];
        describe_range(o, range, sizeof range);
        fprintf(stderr, "nalloc: ignoring %s=%.64s: expected %s; using the default, %zu\n", var,
                text, range, o->value);
    }
}

size_t na_option_get(na_option option)
{
    pthread_once(&once, read_environment);
    return (unsigned)option < NA_OPTION_COUNT ? options[option].value : 0;
}
