/* bench/malloc_id.h - which malloc this executable was linked with (see malloc_id.c). */
#ifndef NALLOC_BENCH_MALLOC_ID_H
#define NALLOC_BENCH_MALLOC_ID_H

#include <stdbool.h>
#include <stddef.h>

/* "glibc", "jemalloc" or "mimalloc": the malloc this executable was built to use. */
const char *bench_malloc_name(void);
/* Check that malloc really is that allocator; writes its name and version into version. False
 * (with a message on stderr) when malloc is served by someone else. */
bool bench_malloc_verify(char *version, size_t size);

#endif /* NALLOC_BENCH_MALLOC_ID_H */
