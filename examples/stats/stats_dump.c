/*
 * stats_dump.c — reading SwiftMalloc's statistics from code.
 *
 * swiftmalloc_stats_print() writes the per-size-class table to stderr, at any
 * moment the program chooses; it does not allocate, so it is safe to call
 * anywhere malloc is. This program allocates a mix of sizes, prints the table
 * while the blocks are live and again after freeing half of them, and then
 * shows the short forms: mallinfo2() figures, malloc_stats() (glibc's layout) and
 * the totals of malloc_info() (glibc's XML document, here into a memory stream).
 *
 * Requested sizes — and so the utilization column (requested ÷ held) — are only
 * recorded when the process runs with SWIFTMALLOC_STATS=1, which also prints the
 * table once more at exit.
 *
 * Given a file name, the program writes the tables to that file instead, by
 * pointing file descriptor 2 at it around each call.
 *
 *   cc -O2 stats_dump.c $(pkg-config --cflags --libs swiftmalloc) \
 *      -Wl,-rpath,$(pkg-config --variable=libdir swiftmalloc) -o stats_dump
 *   ./stats_dump                          # tables on stderr
 *   SWIFTMALLOC_STATS=1 ./stats_dump      # with requested sizes and utilization
 *   ./stats_dump stats.txt                # tables in stats.txt
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <swiftmalloc.h>

#define BLOCKS 10000

static const char *dump_path; /* NULL: stderr */

/* Prints the statistics table under a title, to stderr or appended to dump_path. */
static void dump(const char *title)
{
    fflush(stdout);
    int saved = -1, fd = -1;
    if (dump_path != NULL) {
        fd = open(dump_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            perror(dump_path);
            exit(1);
        }
        saved = dup(2);
        dup2(fd, 2);
    }
    dprintf(2, "---- %s\n", title);
    swiftmalloc_stats_print();
    if (dump_path != NULL) {
        dup2(saved, 2);
        close(saved);
        close(fd);
    }
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        dump_path = argv[1];
        int fd = open(dump_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            perror(dump_path);
            return 1;
        }
        close(fd);
    }

    /* A mix of sizes: mostly small, some of a few pages, a few large. */
    static void *blocks[BLOCKS];
    size_t requested = 0;
    unsigned seed = 12345;
    for (int i = 0; i < BLOCKS; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t r = (seed >> 8) % 1000;
        size_t size = r < 900 ? 8 + r % 200 : r < 990 ? 1024 + (r - 900) * 40 : 40000 + (r - 990) * 10000;
        blocks[i] = malloc(size);
        if (blocks[i] == NULL) {
            perror("malloc");
            return 1;
        }
        memset(blocks[i], 0xA5, size);
        requested += size;
    }
    printf("allocated %d blocks, %zu bytes requested\n", BLOCKS, requested);
    dump("all blocks live");

    for (int i = 0; i < BLOCKS; i += 2) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    printf("freed every other block\n");
    dump("half of the blocks freed");

    struct mallinfo2 mi = mallinfo2();
    printf("mallinfo2: arena %zu, in use (uordblks) %zu, free (fordblks) %zu, not yet returned (keepcost) %zu, "
           "peak held (usmblks) %zu\n", mi.arena, mi.uordblks, mi.fordblks, mi.keepcost, mi.usmblks);
    fflush(stdout);
    malloc_stats();

    /* malloc_info writes to any FILE *: here a memory stream, whose totals are
     * printed (free blocks in thread caches, other free memory, bytes mapped). */
    char *xml = NULL;
    size_t xml_len = 0;
    FILE *mem = open_memstream(&xml, &xml_len);
    if (mem != NULL) {
        int rc = malloc_info(0, mem);
        fclose(mem);
        /* The process-wide totals follow the one <heap> element. */
        char *line = rc == 0 && xml != NULL ? strstr(xml, "</heap>\n") : NULL;
        while (line != NULL && *line != '\0') {
            char *end = strchr(line, '\n');
            if (end != NULL) *end = '\0';
            if (strncmp(line, "<total ", 7) == 0 || strncmp(line, "<system type=\"current\"", 22) == 0)
                printf("malloc_info: %s\n", line);
            line = end != NULL ? end + 1 : NULL;
        }
        free(xml);
    }

    for (int i = 1; i < BLOCKS; i += 2)
        free(blocks[i]);
    malloc_trim(0);
    mi = mallinfo2();
    printf("after freeing everything and malloc_trim: in use %zu, not yet returned %zu\n", mi.uordblks, mi.keepcost);
    return 0;
}
