/* A program that runs for a while holding blocks, under
 * SWIFTMALLOC_REPORT_INTERVAL: it keeps 100 blocks of 48 bytes from
 * hold_blocks(), then waits (at most 30 s) until an interval report of its own
 * appears at REPORT (SWIFTMALLOC_REPORT with the pid in place of %p) and copies
 * it to COPY, then frees half of the blocks and exits. With "fork" the waiting
 * and copying is done by a forked child (after it allocated enough to take the
 * allocator's slow paths, where the child's reporter thread starts), and the
 * parent waits for it and exits.
 *
 *     interval REPORT_TEMPLATE COPY [fork] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void *held[100];   /* global: reachable, and the compiler keeps the calls */

__attribute__((noinline)) static void hold_blocks(void) {
    for (int i = 0; i < 100; i++) {
        held[i] = malloc(48);
        memset(held[i], i, 48);
    }
}

/* Whether `path` holds a whole interval report; copies it to `copy` if so. */
static int copy_interval_report(const char *path, const char *copy) {
    FILE *in = fopen(path, "r");
    if (in == NULL) return 0;
    static char text[1 << 22];
    size_t n = fread(text, 1, sizeof text - 1, in);
    fclose(in);
    text[n] = 0;
    if (strstr(text, "\nreason interval\n") == NULL || strstr(text, "\nend") == NULL) return 0;
    FILE *out = fopen(copy, "w");
    if (out == NULL) return 0;
    fwrite(text, 1, n, out);
    fclose(out);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: interval REPORT_TEMPLATE COPY [fork]\n");
        return 2;
    }
    hold_blocks();
    if (argc > 3 && strcmp(argv[3], "fork") == 0) {
        pid_t child = fork();
        if (child < 0) return 1;
        if (child > 0) {
            int status = 0;
            if (waitpid(child, &status, 0) != child) return 1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
        }
        static void *more[2000];
        for (int i = 0; i < 2000; i++) more[i] = malloc(2000);
        for (int i = 0; i < 2000; i++) free(more[i]);
    }
    char path[4096];
    const char *p = strstr(argv[1], "%p");
    if (p == NULL) snprintf(path, sizeof path, "%s", argv[1]);
    else snprintf(path, sizeof path, "%.*s%d%s", (int)(p - argv[1]), argv[1], (int)getpid(), p + 2);
    int found = 0;
    for (int i = 0; i < 300 && !found; i++) {
        usleep(100000);
        found = copy_interval_report(path, argv[2]);
    }
    if (!found) {
        fprintf(stderr, "interval: no interval report at %s after 30 s\n", path);
        return 1;
    }
    for (int i = 0; i < 50; i++) free(held[i]);
    return 0;
}
