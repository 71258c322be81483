/* The frame-pointer walk (SWIFTMALLOC_PROFILE_WALK=fp, or no libunwind) in code
 * built without frame pointers, where rbp holds whatever the compiler keeps in
 * it. Each of THREADS threads (argv[1], default 200; eight at a time) calls
 * malloc(64) from leak_with_data_in_rbp with rbp pointing at a record on its
 * stack, {0, 0x1000 + 16 * thread}, as a function that keeps the address of a
 * {pointer, size} record in rbp does: a walk that took rbp for a frame pointer
 * would record the size as the caller's return address, different in every
 * thread. The blocks stay live: at exit THREADS blocks of 64 B from
 * leak_with_data_in_rbp. x86-64 only (it sets rbp with inline assembly); elsewhere
 * it prints "skipped" and exits 0.
 *
 *   cc -O2 -g -fomit-frame-pointer -pthread fp_walk.c -o fp_walk
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static void *leaked[4096];

#if defined(__x86_64__)
/* malloc(n) called with rbp = record; rbp and the stack pointer are kept in rbx
 * and r12 (which malloc preserves) and restored after. The call skips the red
 * zone below the stack pointer and is 16-byte aligned. */
__attribute__((noinline)) static void *leak_with_data_in_rbp(uintptr_t *record, size_t n) {
    void *p;
    __asm__ volatile("mov %%rsp, %%rbx\n\t"
                     "mov %%rbp, %%r12\n\t"
                     "sub $128, %%rsp\n\t"
                     "and $-16, %%rsp\n\t"
                     "mov %[record], %%rbp\n\t"
                     "call malloc@PLT\n\t"
                     "mov %%rbx, %%rsp\n\t"
                     "mov %%r12, %%rbp"
                     : "=a"(p), "+D"(n)
                     : [record] "r"(record)
                     : "rbx", "r12", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc");
    return p;
}

static void *thread_main(void *arg) {
    long i = (long)arg;
    uintptr_t record[2] = {0, 0x1000 + 16 * (uintptr_t)i};
    leaked[i] = leak_with_data_in_rbp(record, 64);
    if (leaked[i] == NULL) abort();
    return NULL;
}
#endif

int main(int argc, char **argv) {
#if defined(__x86_64__)
    long threads = argc > 1 ? strtol(argv[1], NULL, 10) : 200;
    if (threads < 1 || threads > 4096) return 2;
    for (long i = 0; i < threads; i += 8) {
        pthread_t t[8];
        long n = threads - i < 8 ? threads - i : 8;
        for (long j = 0; j < n; j++)
            if (pthread_create(&t[j], NULL, thread_main, (void *)(i + j)) != 0) return 1;
        for (long j = 0; j < n; j++) pthread_join(t[j], NULL);
    }
    return 0;
#else
    (void)argc, (void)argv;
    printf("skipped\n");
    return 0;
#endif
}
