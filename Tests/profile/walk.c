/* walk: stacks of every shape the profiler's cached stack walker must get right.
 *
 * Built with -O2 -fomit-frame-pointer, so most frames have no frame pointer and
 * their caller is found by a constant offset from the stack pointer; the
 * functions marked FRAME keep one, and alloca_level changes its stack pointer by
 * a different amount on every call (a frame only a frame pointer can describe);
 * rbp_user keeps another value in rbp below a frame-pointer frame.
 * Recursion reaches past the default depth of 32 frames, two threads run the same
 * paths on their own stacks, and the stacks mix both kinds of frame.
 *
 * Every block is leaked, so the report at exit lists every stack with a
 * deterministic count: the test compares it with a run in which every capture is
 * a libunwind walk (SWIFTMALLOC_PROFILE_WALK=libunwind).
 */
#include <alloca.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
#define FRAME __attribute__((noinline, optimize("no-omit-frame-pointer")))
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

static volatile unsigned long sink;

NOINLINE static void *leaf(size_t n) {
    void *p = malloc(n);
    if (p == NULL) abort();
    memset(p, 1, n < 16 ? n : 16);
    KEEP(p);
    return p;
}

FRAME static void *alloca_level(size_t n, unsigned variant) {
    /* A different stack adjustment on every call. */
    char *scratch = alloca(16 + (variant % 7) * 48);
    scratch[0] = (char)variant;
    KEEP(scratch);
    void *p = leaf(n);
    sink += (unsigned char)scratch[0];
    return p;
}

/* Optimized code may use rbp as an ordinary register: this frame saves its
 * caller's rbp, holds another value in it across the call, and lies below a
 * frame-pointer frame (with_frame), which the walk can only step through with the
 * rbp this frame saved. */
NOINLINE static void *rbp_user(size_t n, unsigned variant) {
    __asm__ volatile("mov %0, %%rbp" : : "r"((uintptr_t)variant * 16 + 0x1000) : "rbp");
    void *p = leaf(n + 16);
    KEEP(p);
    return p;
}

NOINLINE static void *no_frame(size_t n, unsigned variant) {
    void *p = (variant & 1) ? alloca_level(n, variant) : (variant % 4 == 2) ? rbp_user(n, variant) : leaf(n + 8);
    KEEP(p);
    return p;
}

FRAME static void *with_frame(size_t n, unsigned variant) {
    void *p = no_frame(n, variant);
    KEEP(p);
    return p;
}

NOINLINE static void *recurse(unsigned depth, size_t n, unsigned variant) {
    void *p = depth == 0 ? with_frame(n, variant) : recurse(depth - 1, n, variant);
    KEEP(p);
    return p;
}

static pthread_barrier_t start_line;

static void *work(void *arg) {
    unsigned base = (unsigned)(uintptr_t)arg;
    pthread_barrier_wait(&start_line);
    for (unsigned i = 0; i < 3000; i++) {
        unsigned variant = (i * 7 + base) % 11;
        recurse(i % 40, 24 + (i % 5) * 8, variant);
    }
    return NULL;
}

int main(void) {
    pthread_t t[2];
    /* Threads start work together, after every thread exists: the stacks compared
     * are the program's own, not those of thread creation. */
    pthread_barrier_init(&start_line, NULL, 3);
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1)) != 0) return 1;
    work(0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("walk: done %lu\n", sink);
    return 0;
}
