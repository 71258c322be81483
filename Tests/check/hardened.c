/*
 * hardened: what SWIFTMALLOC_CHECK=1 catches that the default mode does not.
 * Each case corrupts the heap in one way and must die of SIGABRT with a one-line
 * "swiftmalloc: ..." report (checked by Tests/run-mode-tests.sh):
 *   overflow-small   write one byte past a 20-byte block, then free it
 *   overflow-large   write one byte past a 100000-byte block, then free it
 *   overflow-realloc write past a 3000-byte block, then realloc it in place
 *   write-after-free overwrite a freed block's first word, then allocate again
 *   write-after-free-deep  write one byte at offset 200 of a freed 256-byte block,
 *                    then allocate again
 *   write-after-free-drained  write into a freed 200-byte block after every other
 *                    block of its span was freed too, then allocate again
 *   write-after-free-drained-many  the same after 64 spans of 200-byte blocks were
 *                    emptied (more than are kept for checking): caught as the
 *                    emptied spans go back
 *   double-free-late free a block, let it be overwritten, free it again
 *   overflow-exact-N write one byte past a block of N bytes, a size with no
 *                    rounding of its own (32, 4096 or 65536: a class size, whole pages)
 *   usable-freed     malloc_usable_size of a freed block the program overwrote
 *   sized-small      free_sized of a 100-byte block with size 64
 *   sized-large      free_sized of a 100000-byte block with size 100001
 *   sized-aligned    free_aligned_sized of aligned_alloc(256, 1024) with an alignment
 *                    its address does not have
 *   usable           (no corruption) malloc_usable_size reports the requested size,
 *                    and writing up to it is fine: must exit 0
 *   sized            (no mistake) free_sized and free_aligned_sized with the sizes
 *                    and alignments of malloc, calloc, realloc and aligned_alloc
 *                    blocks, including alignments aligned_alloc rounds up to a
 *                    power of two (0, 3, 24, 100, 3000): must exit 0
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* C23's sized frees (glibc 2.36 has none: these are the library's). */
extern void free_sized(void *, size_t) __attribute__((weak));
extern void free_aligned_sized(void *, size_t, size_t) __attribute__((weak));

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    if (strcmp(c, "overflow-small") == 0) {
        char *p = malloc(20);
        memset(p, 1, 21);
        free(p);
    } else if (strcmp(c, "overflow-large") == 0) {
        char *p = malloc(100000);
        memset(p, 1, 100001);
        free(p);
    } else if (strcmp(c, "overflow-realloc") == 0) {
        char *p = malloc(3000);
        memset(p, 1, 3001);
        p = realloc(p, 3005);
        free(p);
    } else if (strcmp(c, "write-after-free") == 0) {
        void *keep = malloc(64), *a[8];
        for (int i = 0; i < 8; i++) a[i] = malloc(64);
        for (int i = 0; i < 8; i++) free(a[i]);
        memset(a[3], 0x41, 16);                      /* the use after free */
        for (int i = 0; i < 8; i++) a[i] = malloc(64);
        free(keep);
    } else if (strcmp(c, "write-after-free-deep") == 0) {
        void *keep = malloc(256), *a[8];
        for (int i = 0; i < 8; i++) a[i] = malloc(256);
        for (int i = 0; i < 8; i++) free(a[i]);
        ((volatile char *)a[5])[200] = 1;            /* the use after free, past the first words */
        for (int i = 0; i < 8; i++) a[i] = malloc(256);
        free(keep);
    } else if (strcmp(c, "write-after-free-drained") == 0) {
        char *a[64];
        for (int i = 0; i < 64; i++) a[i] = malloc(200);
        for (int i = 0; i < 64; i++) free(a[i]);
        a[0][100] = 1;                               /* the use after free, its span empty */
        for (int i = 0; i < 64; i++) a[i] = malloc(200);
    } else if (strcmp(c, "write-after-free-drained-many") == 0) {
        enum { N = 64 * 64 };
        static char *a[N];
        for (int i = 0; i < N; i++) a[i] = malloc(200);
        a[N - 1][150] = 1;                           /* a live block: no fault of its own */
        free(a[N - 1]);
        ((volatile char *)a[N - 1])[150] = 2;        /* the use after free, before its span empties */
        for (int i = 0; i < N - 1; i++) free(a[i]);
    } else if (strcmp(c, "double-free-late") == 0) {
        void *keep = malloc(48);
        char *p = malloc(48);
        free(p);
        memset(p, 0, 48);                            /* erases any mark in the block */
        free(p);
        free(keep);
    } else if (strncmp(c, "overflow-exact-", 15) == 0) {
        size_t n = (size_t)atol(c + 15);
        char *next = malloc(n);
        char *p = malloc(n);
        memset(p, 1, n + 1);
        free(p);
        free(next);
    } else if (strcmp(c, "usable-freed") == 0) {
        void *keep = malloc(2000);
        char *p = malloc(2000);
        free(p);
        memset(p, 0, 2000);                          /* erases any mark in the block */
        printf("%zu\n", malloc_usable_size(p));
        free(keep);
        return 1;
    } else if (strcmp(c, "sized-small") == 0) {
        void *keep = malloc(100), *p = malloc(100);
        free_sized(p, 64);
        free(keep);
    } else if (strcmp(c, "sized-large") == 0) {
        void *p = malloc(100000);
        free_sized(p, 100001);
    } else if (strcmp(c, "sized-aligned") == 0) {
        void *p = aligned_alloc(256, 1024);
        /* twice the largest power of two the address happens to be aligned to */
        size_t a = ((size_t)p & (0 - (size_t)p)) * 2;
        free_aligned_sized(p, a, 1024);
    } else if (strcmp(c, "sized") == 0) {
        for (size_t n = 1; n < 3000000; n = n * 5 + 3) {
            free_sized(malloc(n), n);
            free_sized(calloc(n, 3), n * 3);
            free_sized(realloc(malloc(n), n + 7), n + 7);
            for (size_t a = 16; a <= 65536; a *= 16)
                free_aligned_sized(aligned_alloc(a, (n + a - 1) / a * a), a, (n + a - 1) / a * a);
            static const size_t rounded[] = { 0, 3, 24, 100, 3000 };
            for (size_t k = 0; k < sizeof rounded / sizeof *rounded; k++)
                free_aligned_sized(aligned_alloc(rounded[k], n), rounded[k], n);
        }
        free_sized(NULL, 10);
        return 0;
    } else if (strcmp(c, "usable") == 0) {
        for (size_t n = 1; n < 70000; n = n * 3 + 1) {
            char *p = malloc(n);
            size_t u = malloc_usable_size(p);
            if (u != n) { printf("usable size %zu for %zu bytes\n", u, n); return 1; }
            memset(p, 7, u);
            p = realloc(p, n + 1);
            free(p);
        }
        return 0;
    } else {
        fprintf(stderr, "unknown case %s\n", c);
        return 2;
    }
    printf("%s: not detected\n", c);
    return 1;
}
