/* tests/override/witness_stdio.c - output buffered in a witness arena survives the exit wipe.
 *
 * Linked with the override library, so stdio's own malloc calls follow the route: the program
 * routes into a witness arena before stdout's first use (its buffer becomes a block there),
 * leaves its output buffered and returns from main. The exit-time wipe zeroes the arena in an
 * atexit handler, and the C library flushes stdio only after those: the wipe must flush stdout
 * (and stderr) first, or the output is lost. The test (tests/CMakeLists.txt) reads stdout through
 * a pipe, so that it is fully buffered. (Streams a program opens itself are its own to close.)
 */
#include <nalloc/nalloc.h>

#include <stdio.h>

int main(void)
{
    nalloc_arena_config config;
    nalloc_arena_config_init(&config, NALLOC_KIND_WITNESS, NALLOC_MEMORY_HOST, 4 << 20);
    nalloc_arena *witness = NULL;
    if (nalloc_arena_create(&config, &witness) != NALLOC_OK ||
        nalloc_route_push(witness) != NALLOC_OK)
        return 2;
    printf("proof result: 42\n");
    /* glibc's FILE: the buffer must be a block of the arena, or this checks nothing. */
    if (nalloc_owner(stdout->_IO_buf_base) != witness)
        return 3;
    printf("log line\n");
    return 0; /* the route and the arena stay */
}
