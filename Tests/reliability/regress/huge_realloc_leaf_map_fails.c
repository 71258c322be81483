/*
 * huge_realloc_leaf_map_fails — finding 2 in docs/RELIABILITY.md (found by the
 * fault-injection sweep, Tests/reliability/failmap.c + faultdrv.c).
 *
 * realloc of a huge block is an mremap; when the kernel moves the block into a
 * 1 GiB region the page map has no leaf for yet, the allocator maps the leaf.
 * If that mmap fails (the system is out of memory), realloc must fail cleanly —
 * NULL, errno ENOMEM, the block intact and still the caller's — or succeed some
 * other way; it must not abort the process.
 *
 * Deterministic: this program defines mmap itself (an executable's definition
 * binds before libc's for the allocator's calls through its PLT) and refuses
 * every mmap while the realloc runs; growing a 64 MiB block to 2 GiB makes the
 * kernel place it below every other mapping, in a region with no leaf. The
 * 2 GiB are reserved, never touched.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int refuse;
static volatile long refused;

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (refuse) {
        refused++;
        errno = ENOMEM;
        return MAP_FAILED;
    }
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
    return r == -1 ? MAP_FAILED : (void *)r;
}

int main(void)
{
    size_t small = 64u << 20, big = (size_t)2 << 30;
    unsigned char *p = malloc(small);
    if (p == NULL) { printf("FAILED: malloc(64 MiB)\n"); return 1; }
    memset(p, 0x5A, 4096);
    memset(p + small - 4096, 0xA5, 4096);
    refuse = 1;
    errno = 0;
    unsigned char *q = realloc(p, big);
    int err = errno;
    refuse = 0;
    if (q == NULL) {
        if (err != ENOMEM) { printf("FAILED: realloc returned NULL with errno %d\n", err); return 1; }
        q = p; /* the block must still be there */
    } else if (malloc_usable_size(q) < big) {
        printf("FAILED: realloc to 2 GiB gave a block of %zu bytes\n", malloc_usable_size(q));
        return 1;
    }
    for (size_t i = 0; i < 4096; i++)
        if (q[i] != 0x5A || q[small - 4096 + i] != 0xA5) { printf("FAILED: contents lost\n"); return 1; }
    free(q);
    void *r = malloc(small);
    if (r == NULL) { printf("FAILED: malloc after the failure\n"); return 1; }
    free(r);
    printf("ok: realloc with mmap refused %s (%ld mmap calls refused)\n", q == p ? "failed cleanly" : "succeeded",
           (long)refused);
    return 0;
}
