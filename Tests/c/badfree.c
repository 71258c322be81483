/*
 * badfree.c — invalid frees must be caught.
 *
 * Usage: badfree CASE     run one case
 *        badfree --list   print the case names, one per line
 *
 * Each case first prints one line on stdout,
 *     ADDR <address> CALL <free()|realloc()|free_sized()|...>
 * with the address (as %p prints it) it is about to pass to the named call, then
 * makes that invalid call. SwiftMalloc must then print one line on stderr that
 * starts with "swiftmalloc: " and names the call and the address, and abort():
 * the process dies of SIGABRT. If the invalid call returns, the case prints a
 * note on stderr and exits with status 1. Tests/run-c-tests.sh checks all this.
 */
#define _GNU_SOURCE
#define TEST_NAME "badfree"
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

static _Alignas(64) unsigned char global_buffer[256];

static void announce(const void *addr, const char *call)
{
    printf("ADDR %p CALL %s\n", addr, call);
    fflush(stdout);
}

static void returned(const char *what)
{
    fprintf(stderr, "badfree: the invalid call (%s) returned instead of aborting\n", what);
    fflush(stderr);
    _exit(1);
}

static unsigned char *alloc_filled(size_t n)
{
    unsigned char *p = malloc(n);
    CHECK(p != NULL, "malloc(%zu) returned NULL", n);
    memset(p, 0x6B, n);
    return opaque_ptr(p);
}

/* Frees a block of size n, then frees it again. */
static void double_free(size_t n)
{
    unsigned char *p = alloc_filled(n);
    /* Other live blocks of the same size around it, as in a real program. */
    unsigned char *before = alloc_filled(n), *after = alloc_filled(n);
    unsigned char *again = opaque_ptr(p);
    announce(p, "free()");
    free(p);
    free(again);
    returned("second free()");
    free(before);
    free(after);
}

static void realloc_freed(size_t n)
{
    unsigned char *p = alloc_filled(n);
    unsigned char *other = alloc_filled(n);
    unsigned char *again = opaque_ptr(p);
    announce(p, "realloc()");
    free(p);
    void *q = realloc(again, n * 2);
    (void)q;
    returned("realloc() of a freed block");
    free(other);
}

static void interior(size_t n, size_t offset)
{
    unsigned char *p = alloc_filled(n);
    unsigned char *q = p + offset;
    announce(q, "free()");
    free(opaque_ptr(q));
    returned("free() of an interior pointer");
}

typedef void (*case_fn)(void);

static void c_double_small(void) { double_free(32); }
static void c_double_medium(void) { double_free(2000); }
static void c_double_medium20k(void) { double_free(20 << 10); }
static void c_double_large(void) { double_free(256 << 10); }
static void c_double_huge(void) { double_free(8 << 20); }

static void c_double_interleaved(void)
{
    unsigned char *a = alloc_filled(48), *b = alloc_filled(48);
    unsigned char *again = opaque_ptr(a);
    announce(a, "free()");
    free(a);
    free(b);
    free(again);
    returned("free(a); free(b); free(a)");
}

/* The first free's block leaves the thread's cache (thousands of frees of its size
 * after it overflow the bin, which gives blocks back to their spans) before the
 * second free. */
static void double_after_flush(size_t size)
{
    enum { n = 6000 };
    static void *others[n];
    unsigned char *p = alloc_filled(size);
    unsigned char *again = opaque_ptr(p);
    for (int i = 0; i < n; i++) others[i] = alloc_filled(size);
    announce(p, "free()");
    free(p);
    for (int i = 0; i < n; i++) free(others[i]);
    free(again);
    returned("free() of a block freed before thousands of others");
}
static void c_double_after_flush(void) { double_after_flush(96); }

/* With mixed spans (SWIFTMALLOC_MIXED=1) the free fast path puts a block of a
 * mixed span on the thread's unsorted bin without reading the span's granule
 * map, so a free of a granule that starts no block is caught when that bin is
 * sorted: at the latest when it overflows. These cases free more blocks of
 * mixed sizes after the invalid call, and only then count it as returned. */
static void sort_unsorted_bin(void)
{
    enum { n = 200 };
    static void *q[n];
    for (int i = 0; i < n; i++) q[i] = alloc_filled(300 + (size_t)i * 8);
    for (int i = 0; i < n; i++) free(q[i]);
}

/* 600 B: with mixed spans, its freed neighbours have merged with it by the second
 * free (its start is then inside or at the start of a free range). */
static void c_double_after_flush_mixed(void)
{
    enum { n = 6000 };
    static void *others[n];
    unsigned char *p = alloc_filled(600);
    unsigned char *again = opaque_ptr(p);
    for (int i = 0; i < n; i++) others[i] = alloc_filled(600);
    announce(p, "free()");
    free(p);
    for (int i = 0; i < n; i++) free(others[i]);
    malloc_trim(0);
    free(again);
    sort_unsorted_bin();
    returned("free() of a block freed and merged before thousands of others");
}

static void *free_in_thread(void *p)
{
    free(p);
    return NULL;
}

/* Freed by the main thread, then again by another thread (whose cache is empty). */
static void c_double_other_thread(void)
{
    unsigned char *p = alloc_filled(200);
    unsigned char *again = opaque_ptr(p);
    announce(p, "free()");
    free(p);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_in_thread, again) == 0, "pthread_create failed");
    pthread_join(t, NULL);
    returned("free() of a freed block by another thread");
}

static void c_realloc_freed_small(void) { realloc_freed(40); }
static void c_realloc_freed_large(void) { realloc_freed(512 << 10); }
static void c_interior_small(void) { interior(64, 16); }
/* 64 bytes in: with mixed spans, a granule of a block, not its start. */
static void c_interior_mixed(void)
{
    unsigned char *p = alloc_filled(1000);
    unsigned char *q = opaque_ptr(p + 64);
    announce(q, "free()");
    free(q);
    sort_unsorted_bin();
    returned("free() of an interior pointer");
}
static void c_realloc_freed_mixed(void) { realloc_freed(700); }
static void c_interior_large(void) { interior(256 << 10, 4096); }
static void c_interior_large_16(void) { interior(256 << 10, 16); }
static void c_interior_huge(void) { interior((size_t)80 << 20, (size_t)3 << 20); }
static void c_misaligned(void) { interior(64, 1); }

static void c_usable_freed(void)
{
    void *keep = malloc(2000);
    char *p = malloc(2000);
    CHECK(keep != NULL && p != NULL, "malloc returned NULL");
    free(p);
    announce(p, "malloc_usable_size()");
    size_t n = malloc_usable_size(opaque_ptr(p));
    (void)n;
    returned("malloc_usable_size() of a freed block");
}

static void c_stack(void)
{
    unsigned char local[128];
    memset(local, 1, sizeof local);
    void *p = opaque_ptr(local + 64);
    announce(p, "free()");
    free(p);
    returned("free() of a stack address");
}

static void c_global(void)
{
    memset(global_buffer, 2, sizeof global_buffer);
    void *p = opaque_ptr(global_buffer);
    announce(p, "free()");
    free(p);
    returned("free() of a global address");
}

static void c_mmap(void)
{
    size_t len = 1 << 20;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap failed");
    memset(m, 3, len);
    announce(m, "free()");
    free(opaque_ptr(m));
    returned("free() of a region mapped by the program");
}

/* An address that aliases a live block's page-map entry: 16 TiB away (the flat
 * map covers a 16 TiB window, so the fast path reads the block's own entry for
 * it), and above the 47-bit address space. */
static void alias(uintptr_t distance)
{
    unsigned char *p = alloc_filled(64);
    uintptr_t q = (uintptr_t)p >= distance && distance < ((uintptr_t)1 << 47) ? (uintptr_t)p - distance
                                                                            : (uintptr_t)p + distance;
    announce((void *)q, "free()");
    free(opaque_ptr((void *)q));
    returned("free() of an address that aliases a block's page");
}
static void c_alias_window(void) { alias((uintptr_t)1 << 44); }
static void c_alias_high(void) { alias((uintptr_t)1 << 47); }

static void c_realloc_stack(void)
{
    unsigned char local[64];
    memset(local, 4, sizeof local);
    void *p = opaque_ptr(local);
    announce(p, "realloc()");
    void *q = realloc(p, 100);
    (void)q;
    returned("realloc() of a stack address");
}

/* C23's sized frees (glibc 2.36 has none: these are the library's). A bad
 * pointer is reported under the name of the call that was made. */
extern void free_sized(void *, size_t) __attribute__((weak));
extern void free_aligned_sized(void *, size_t, size_t) __attribute__((weak));

static void c_free_sized_double(void)
{
    CHECK(free_sized != NULL, "free_sized is not defined");
    unsigned char *p = alloc_filled(200);
    announce(p, "free_sized()");
    free_sized(p, 200);
    free_sized(opaque_ptr(p), 200);
    returned("free_sized() of a freed block");
}

static void c_free_sized_stack(void)
{
    CHECK(free_sized != NULL, "free_sized is not defined");
    unsigned char local[96];
    memset(local, 5, sizeof local);
    void *p = opaque_ptr(local + 32);
    announce(p, "free_sized()");
    free_sized(p, 64);
    returned("free_sized() of a stack address");
}

static void c_free_aligned_sized_double(void)
{
    CHECK(free_aligned_sized != NULL, "free_aligned_sized is not defined");
    unsigned char *p = aligned_alloc(256, 1024);
    CHECK(p != NULL, "aligned_alloc returned NULL");
    announce(p, "free_aligned_sized()");
    free_aligned_sized(p, 256, 1024);
    free_aligned_sized(opaque_ptr(p), 256, 1024);
    returned("free_aligned_sized() of a freed block");
}

static const struct { const char *name; case_fn fn; } cases[] = {
    { "free-sized-double", c_free_sized_double },
    { "free-sized-stack", c_free_sized_stack },
    { "free-aligned-sized-double", c_free_aligned_sized_double },
    { "double-free-small", c_double_small },
    { "double-free-medium", c_double_medium },
    { "double-free-medium-20k", c_double_medium20k },
    { "double-free-large", c_double_large },
    { "double-free-huge", c_double_huge },
    { "double-free-interleaved", c_double_interleaved },
    { "double-free-after-flush", c_double_after_flush },
    { "double-free-after-flush-mixed", c_double_after_flush_mixed },
    { "double-free-other-thread", c_double_other_thread },
    { "realloc-freed-small", c_realloc_freed_small },
    { "realloc-freed-large", c_realloc_freed_large },
    { "interior-small", c_interior_small },
    { "interior-mixed", c_interior_mixed },
    { "realloc-freed-mixed", c_realloc_freed_mixed },
    { "interior-large", c_interior_large },
    { "interior-large-16", c_interior_large_16 },
    { "interior-huge", c_interior_huge },
    { "usable-size-freed", c_usable_freed },
    { "misaligned", c_misaligned },
    { "stack", c_stack },
    { "global", c_global },
    { "foreign-mmap", c_mmap },
    { "realloc-stack", c_realloc_stack },
    { "alias-window", c_alias_window },
    { "alias-high", c_alias_high },
};

int main(int argc, char **argv)
{
    const size_t ncases = sizeof cases / sizeof cases[0];
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < ncases; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: %s CASE | --list\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < ncases; i++)
        if (strcmp(argv[1], cases[i].name) == 0) {
            /* Some ordinary allocator traffic first, so that the allocator is
             * initialised and holds other live and freed blocks. */
            void *warm[64];
            for (int j = 0; j < 64; j++) {
                warm[j] = malloc((size_t)(j + 1) * 24);
                CHECK(warm[j] != NULL, "malloc returned NULL");
            }
            for (int j = 0; j < 64; j += 2)
                free(warm[j]);
            cases[i].fn();
            return 1;
        }
    fprintf(stderr, "badfree: unknown case '%s'\n", argv[1]);
    return 2;
}
