/* tests/fuzz/replay.c - run the fuzz harness on files, without libFuzzer.
 *
 * `fuzz_replay FILE_OR_DIR...` feeds every file (every regular file in each directory) to
 * LLVMFuzzerTestOneInput once, so the committed corpus is a unit test in every build, under
 * ThreadSanitizer and Valgrind too, and a crash found by a long fuzzing run can be replayed with
 * gcc and a debugger. Exits non-zero when a path cannot be read; a broken check aborts.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    static uint8_t data[1 << 20];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    LLVMFuzzerTestOneInput(data, n);
    return 0;
}

int main(int argc, char **argv)
{
    int bad = 0, runs = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            bad = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad |= run_file(argv[i]);
            runs++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            perror(argv[i]);
            bad = 1;
            continue;
        }
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                bad |= run_file(path);
                runs++;
            }
        }
        closedir(d);
    }
    printf("fuzz_replay: %d inputs\n", runs);
    return bad || runs == 0;
}
