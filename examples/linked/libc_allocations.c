/*
 * libc_allocations.c — linking libswiftmalloc.so directly. The library then
 * provides malloc, free, ... for the whole process, so the blocks libc allocates
 * on the program's behalf land in SwiftMalloc too: strdup's copy, getline's
 * buffer, fopen's FILE and its stdio buffer. The program shows it with
 * SwiftMalloc's own count of bytes in use (swiftmalloc_mallinfo2().uordblks;
 * mallinfo2() is the same function here) before and after each call, checks each
 * block with swiftmalloc_usable_size (which would abort on a block that is not
 * SwiftMalloc's), and prints the statistics table at the end.
 *
 *   cc -O2 libc_allocations.c $(pkg-config --cflags --libs swiftmalloc) \
 *      -Wl,-rpath,$(pkg-config --variable=libdir swiftmalloc) -o libc_allocations
 *   ./libc_allocations
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <swiftmalloc.h>

static size_t in_use(void) { return swiftmalloc_mallinfo2().uordblks; }

static int failures;

static void report(const char *what, size_t before, size_t after)
{
    printf("%-42s SwiftMalloc bytes in use %8zu -> %8zu (%+ld)\n", what, before, after,
           (long)after - (long)before);
    if (after <= before) {
        printf("  ^ expected this allocation in SwiftMalloc\n");
        failures++;
    }
}

int main(void)
{
    /* A small text file to read back. */
    char path[] = "/tmp/swiftmalloc-example-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); return 1; }
    static const char text[] =
        "The first line of the file.\n"
        "A second, longer line, to make getline grow its buffer beyond its first size: "
        "0123456789 0123456789 0123456789 0123456789 0123456789 0123456789 0123456789\n";
    if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1)) { perror("write"); return 1; }
    close(fd);

    /* stdout's own buffer is allocated by the first printf: get it out of the way. */
    printf("SwiftMalloc %s, linked into this program\n", SWIFTMALLOC_VERSION_STRING);

    size_t before = in_use();
    char *copy = strdup("a string copied by libc's strdup");
    report("strdup", before, in_use());
    printf("  strdup block: %zu usable bytes for %zu\n", swiftmalloc_usable_size(copy), strlen(copy) + 1);

    before = in_use();
    FILE *f = fopen(path, "r");
    if (f == NULL) { perror("fopen"); return 1; }
    report("fopen (the FILE)", before, in_use());
    printf("  FILE block: %zu usable bytes\n", swiftmalloc_usable_size(f));

    char *line = NULL;
    size_t cap = 0;
    before = in_use();
    ssize_t len = getline(&line, &cap, f);
    report("first getline (stdio buffer + line buffer)", before, in_use());
    if (len < 0) { perror("getline"); return 1; }
    printf("  line buffer: %zu usable bytes, capacity %zu, line of %zd\n",
           swiftmalloc_usable_size(line), cap, len);

    before = in_use();
    len = getline(&line, &cap, f);
    report("second getline (buffer grown by realloc)", before, in_use());
    printf("  line buffer: %zu usable bytes, capacity %zu, line of %zd\n",
           swiftmalloc_usable_size(line), cap, len);

    before = in_use();
    fclose(f);
    free(line);
    free(copy);
    size_t after = in_use();
    printf("%-42s SwiftMalloc bytes in use %8zu -> %8zu (%+ld)\n", "fclose, free, free", before, after,
           (long)after - (long)before);
    if (after >= before) {
        printf("  ^ expected the blocks to go back to SwiftMalloc\n");
        failures++;
    }
    unlink(path);

    fflush(stdout);
    swiftmalloc_stats_print();
    if (failures) {
        printf("%d allocation(s) did not go through SwiftMalloc\n", failures);
        return 1;
    }
    printf("every libc allocation above went through SwiftMalloc\n");
    return 0;
}
