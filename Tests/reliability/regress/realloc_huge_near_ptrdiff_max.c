/*
 * realloc_huge_near_ptrdiff_max — finding 1 in docs/RELIABILITY.md (found by
 * fuzz_alloc).
 *
 * realloc of a huge block (64 MiB and more, its own mapping) to a size within a
 * page of PTRDIFF_MAX must fail like any other impossible request: NULL, errno
 * ENOMEM, the block intact and still owned by the caller (glibc's behaviour, and
 * what SwiftMalloc does for small and large blocks). Rounding such a size up to
 * whole pages gives 2^63 bytes, which does not fit a signed size.
 *
 * Each case runs in a child process; the program prints one line per case and
 * exits 0 only if every case behaved.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int one_case(size_t block, size_t request)
{
    unsigned char *p = malloc(block);
    if (p == NULL) { printf("  malloc(%zu) failed\n", block); return 1; }
    memset(p, 0x5A, 4096);
    memset(p + block - 4096, 0xA5, 4096);
    errno = 0;
    void *q = realloc(p, request);
    int err = errno;
    if (q != NULL) { printf("  realloc returned %p, expected NULL\n", q); return 1; }
    if (err != ENOMEM) { printf("  realloc failed with errno %d, expected ENOMEM\n", err); return 1; }
    for (size_t i = 0; i < 4096; i++)
        if (p[i] != 0x5A || p[block - 4096 + i] != 0xA5) { printf("  the block was damaged\n"); return 1; }
    if (malloc_usable_size(p) < block) { printf("  the block is no longer the caller's\n"); return 1; }
    free(p);
    return 0;
}

int main(void)
{
    static const size_t requests[] = { PTRDIFF_MAX, PTRDIFF_MAX - 1, PTRDIFF_MAX - 4094 };
    static const size_t blocks[] = { 64u << 20, 100u << 20 };
    int bad = 0;
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
        for (size_t r = 0; r < sizeof requests / sizeof requests[0]; r++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) _exit(one_case(blocks[b], requests[r]));
            int st = 0;
            waitpid(pid, &st, 0);
            int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            printf("%s: realloc(block of %zu MiB, %#zx)%s\n", ok ? "ok" : "FAILED", blocks[b] >> 20, requests[r],
                   ok ? "" : WIFSIGNALED(st) ? " killed by a signal" : " misbehaved");
            if (WIFSIGNALED(st)) printf("  signal %d\n", WTERMSIG(st));
            bad |= !ok;
        }
    return bad;
}
