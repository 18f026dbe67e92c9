/* src/options.c - every tunable in one table, each overridable from the environment.
 *
 * An option's value is its default below unless NALLOC_<NAME> is set in the environment to a
 * number, optionally with a binary suffix (k, m, g: 2^10, 2^20, 2^30). The environment is read
 * once, on first use; a value that does not parse, that is not a power of two where one is
 * required, or that is below an option's minimum, is ignored with one warning on stderr. Options
 * only supply defaults: nalloc_arena_config_init copies them into the config, where the caller may
 * override them.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct option_desc {
    const char *name;   /* the environment variable is NALLOC_<name> */
    size_t value;       /* the default, then the value in force */
    bool power_of_two;  /* the value must be a power of two */
} option_desc;

static option_desc options[NA_OPTION_COUNT] = {
    [NA_OPTION_VERBOSE] = {"VERBOSE", 0, false},                  /* print stats on destroy */
    [NA_OPTION_HOST_ALIGN] = {"HOST_ALIGN", 64, true},            /* a cache line; AVX-512 */
    [NA_OPTION_DEVICE_ALIGN] = {"DEVICE_ALIGN", 256, true},       /* what cudaMalloc guarantees */
    [NA_OPTION_LARGE_THRESHOLD] = {"LARGE_THRESHOLD", (size_t)1 << 20, false}, /* 1 MiB */
    [NA_OPTION_LARGE_ALIGN] = {"LARGE_ALIGN", 4096, true},        /* a page */
    [NA_OPTION_GUARD_SIZE] = {"GUARD_SIZE", 0, false},            /* 0: one page */
    [NA_OPTION_DEVICE_SLACK] = {"DEVICE_SLACK", (size_t)256 << 20, false}, /* 256 MiB */
    [NA_OPTION_PIN_CHUNK] = {"PIN_CHUNK", (size_t)1 << 30, false}, /* 1 GiB */
    /* 64 MiB: what the prefault helper keeps faulted in beyond each arena's offset, at least */
    [NA_OPTION_PREFAULT_AHEAD] = {"PREFAULT_AHEAD", (size_t)64 << 20, false},
};

/* The smallest value accepted, for the options that have one. */
static const size_t option_min[NA_OPTION_COUNT] = {
    [NA_OPTION_PREFAULT_AHEAD] = (size_t)2 << 20, /* a huge page: stretches can be huge pages */
};

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Parse "123", "64k", "1M", "2g". False on anything else or on overflow. A digit first: strtoull
 * would skip blanks and take " -1" as 2^64 - 1. */
static bool parse_size(const char *text, size_t *out)
{
    if (!isdigit((unsigned char)text[0]))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0)
        return false;
    unsigned shift = 0;
    switch (tolower((unsigned char)*end)) {
    case 'k':
        shift = 10;
        end++;
        break;
    case 'm':
        shift = 20;
        end++;
        break;
    case 'g':
        shift = 30;
        end++;
        break;
    }
    if (*end != '\0' || (shift && v > (SIZE_MAX >> shift)))
        return false;
    *out = (size_t)v << shift;
    return true;
}

static void read_environment(void)
{
    for (int i = 0; i < NA_OPTION_COUNT; i++) {
        char var[64];
        snprintf(var, sizeof var, "NALLOC_%s", options[i].name);
        const char *text = getenv(var);
        size_t v;
        if (text == NULL)
            continue;
        if (parse_size(text, &v) && (!options[i].power_of_two || nalloc_is_pow2(v)) &&
            v >= option_min[i])
            options[i].value = v;
        else if (option_min[i] > 0)
            fprintf(stderr, "nalloc: ignoring %s=%s (expected a size of at least %zu bytes, "
                            "such as 64m)\n", var, text, option_min[i]);
        else
            fprintf(stderr, "nalloc: ignoring %s=%s (expected %s)\n", var, text,
                    options[i].power_of_two ? "a power of two" : "a size such as 4096 or 1m");
    }
}

size_t na_option_get(na_option option)
{
    pthread_once(&once, read_environment);
    return (unsigned)option < NA_OPTION_COUNT ? options[option].value : 0;
}
