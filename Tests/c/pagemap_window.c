/*
 * pagemap_window: blocks placed outside the 16 TiB window of address space that
 * the flat page map covers (docs/DESIGN.md, "The page map") are allocated, freed,
 * reused and checked like any other. The free fast path reads such a block's entry
 * at an alias inside the window, whose span fails the block-start test, so the
 * block goes through the slow path's two-level lookup; a double free of one is
 * still caught.
 *
 * The test fills every gap of the address space above the window's base with
 * inaccessible reservations (PROT_NONE, no memory committed), so the system places
 * the page heap's next chunks below the window, then allocates until blocks land
 * there. Skipped where the address space cannot be filled that way (RLIMIT_AS).
 */
#define _GNU_SOURCE
#define TEST_NAME "pagemap_window"
#include "testutil.h"
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/mman.h>

#define WINDOW_BITS 44
#define COUNT 60000

static uintptr_t window_base;

static int outside(const void *p) { return (uintptr_t)p < window_base; }

/* Maps PROT_NONE pieces, halving their size from 1 TiB to 1 MiB, while the system
 * places them at or above the window's base: afterwards no gap of 1 MiB or more is
 * left there. Returns 0 when a reservation fails before that. */
static int fill_above_window(void)
{
    for (size_t size = (size_t)1 << 40; size >= (1u << 20); size >>= 1) {
        for (;;) {
            void *m = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED) return 0;
            if (outside(m)) {
                munmap(m, size);
                break;
            }
        }
    }
    return 1;
}

static unsigned char *blocks[COUNT];
static size_t sizes[COUNT];

int main(void)
{
    void *first = malloc(64);
    CHECK(first != NULL, "malloc(64) failed");
    window_base = (uintptr_t)first & ~(((uintptr_t)1 << WINDOW_BITS) - 1);
    if (window_base == 0) {
        printf("pagemap_window: SKIP (the heap is in the lowest window: nothing lies below it)\n");
        return 0;
    }
    if (!fill_above_window()) {
        printf("pagemap_window: SKIP (the address space could not be reserved: %s)\n", strerror(errno));
        return 0;
    }

    /* Enough small and medium blocks to use up every span inside the window. */
    rng_t r;
    rng_seed(&r, 44);
    long out = 0;
    for (long i = 0; i < COUNT; i++) {
        sizes[i] = i % 16 == 15 ? rng_range(&r, 1025, 32768) : rng_range(&r, 1, 1024);
        blocks[i] = malloc(sizes[i]);
        CHECK(blocks[i] != NULL, "malloc(%zu) failed", sizes[i]);
        pattern_fill(blocks[i], sizes[i], (uint64_t)i);
        CHECK(malloc_usable_size(blocks[i]) >= sizes[i], "malloc_usable_size(%p) = %zu < %zu",
              (void *)blocks[i], malloc_usable_size(blocks[i]), sizes[i]);
        out += outside(blocks[i]);
    }
    CHECK(out > COUNT / 4, "only %ld of %d blocks were placed below the window at %#lx", out, COUNT,
          (unsigned long)window_base);

    /* Free every other block, grow some, and check the rest are intact. */
    for (long i = 0; i < COUNT; i += 2) {
        CHECK(pattern_check(blocks[i], sizes[i], (uint64_t)i) == (size_t)-1, "block %ld (%p) corrupted", i,
              (void *)blocks[i]);
        free(blocks[i]);
        blocks[i] = NULL;
    }
    for (long i = 1; i < COUNT; i += 6) {
        size_t grown = sizes[i] + 100;
        unsigned char *q = realloc(blocks[i], grown);
        CHECK(q != NULL, "realloc(%p, %zu) failed", (void *)blocks[i], grown);
        CHECK(pattern_check(q, sizes[i], (uint64_t)i) == (size_t)-1, "realloc lost block %ld's contents", i);
        pattern_fill(q, grown, (uint64_t)i);
        blocks[i] = q;
        sizes[i] = grown;
    }

    /* The freed blocks outside the window are used again: a refill of the same
     * sizes gets addresses below the window back, not only fresh memory. */
    long reused = 0;
    for (long i = 0; i < COUNT; i += 2) {
        sizes[i] = i % 16 == 14 ? rng_range(&r, 1025, 32768) : rng_range(&r, 1, 1024);
        blocks[i] = malloc(sizes[i]);
        CHECK(blocks[i] != NULL, "malloc(%zu) failed", sizes[i]);
        pattern_fill(blocks[i], sizes[i], (uint64_t)i);
        reused += outside(blocks[i]);
    }
    CHECK(reused > COUNT / 16, "only %ld refilled blocks below the window", reused);
    for (long i = 0; i < COUNT; i++) {
        CHECK(pattern_check(blocks[i], sizes[i], (uint64_t)i) == (size_t)-1, "block %ld (%p) corrupted", i,
              (void *)blocks[i]);
        free(blocks[i]);
    }

    /* A double free of a block below the window is reported. */
    if (malloc_is_swiftmalloc()) {
        unsigned char *p = NULL;
        for (int tries = 0; tries < 100000 && (p == NULL || !outside(p)); tries++) p = malloc(48);
        CHECK(p != NULL && outside(p), "no block of 48 bytes below the window");
        fflush(NULL);
        pid_t child = fork();
        CHECK(child >= 0, "fork failed");
        if (child == 0) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0) dup2(null, 2);
            free(p);
            free(opaque_ptr(p));
            _exit(0);
        }
        int status = 0;
        CHECK(waitpid(child, &status, 0) == child, "waitpid failed");
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
              "a double free of %p below the window was not reported (status %#x)", (void *)p, status);
        free(p);
    }
    free(first);
    printf("pagemap_window: ok (%ld of %d blocks below the window, %ld refilled there)\n", out, COUNT, reused);
    return 0;
}
