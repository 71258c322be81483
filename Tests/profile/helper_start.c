/* The library's background thread starts while the program allocates: what glibc
 * allocates for that thread must not be counted at the program's call sites.
 *
 *     helper_start
 *
 * One thread only. grow_heap allocates 64 blocks of 256 KiB (16 MiB, past the
 * heap size at which the library starts its purge thread) and frees them;
 * keep_three then keeps three 1000-byte blocks to the end. So the program makes
 * exactly 67 allocations, 64 frees, and has 3 blocks (3000 bytes) live at exit.
 * Prints the number of threads the process had after the growth (2 when the
 * purge thread started) and writes nothing else (no stdio buffer). */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void *kept[3];

__attribute__((noinline)) static void grow_heap(void) {
    void *blocks[64];
    for (int i = 0; i < 64; i++) {
        blocks[i] = malloc(256 << 10);
        if (blocks[i] == NULL) abort();
        memset(blocks[i], i, 256 << 10);
    }
    for (int i = 0; i < 64; i++) free(blocks[i]);
}

__attribute__((noinline)) static void keep_three(void) {
    for (int i = 0; i < 3; i++) {
        kept[i] = malloc(1000);
        if (kept[i] == NULL) abort();
    }
}

static int threads_now(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/task");   /* opendir allocates: once, after the counts below */
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    if (d != NULL) closedir(d);
    return n;
}

int main(void) {
    grow_heap();
    keep_three();
    /* The purge thread is started by the allocation that grows the heap; give it
     * a moment to show up in /proc. */
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    char line[64];
    int n = snprintf(line, sizeof line, "threads %d\n", threads_now());
    if (write(1, line, (size_t)n) != n) return 1;
    return 0;
}
