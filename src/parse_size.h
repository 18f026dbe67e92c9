/* src/parse_size.h - a size as people write it in the environment: "123", "64k", "1M", "4g".
 *
 * Shared by the options table (options.c: NALLOC_GUARD_SIZE and the others) and the override
 * library's NALLOC_ROUTE (override.c, which sees only the public API and this header).
 */
#ifndef NALLOC_PARSE_SIZE_H
#define NALLOC_PARSE_SIZE_H

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Parse `text`: decimal digits and an optional suffix k, m, g or t in either case (powers of
 * 1024), the suffixes up to `max_shift` (30: up to g, 40: up to t). False on anything else or on
 * overflow. A digit first: strtoull would skip blanks and take " -1" as 2^64 - 1. */
static inline bool na_parse_size(const char *text, unsigned max_shift, size_t *out)
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
        break;
    case 'm':
        shift = 20;
        break;
    case 'g':
        shift = 30;
        break;
    case 't':
        shift = 40;
        break;
    }
    if (shift > max_shift)
        return false;
    if (shift != 0)
        end++;
    if (*end != '\0' || v > (SIZE_MAX >> shift))
        return false;
    *out = (size_t)v << shift;
    return true;
}

#endif /* NALLOC_PARSE_SIZE_H */
