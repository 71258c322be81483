/*
 * oom: running out of address space. Under an RLIMIT_AS about 300 MiB above what
 * the process already uses, allocation must fail cleanly — NULL with errno ENOMEM,
 * no crash, no corruption of what was allocated before — for medium, large, huge
 * and small requests, and must work again once memory has been freed (including a
 * block larger than any freed one, which needs the freed address space back).
 */
#define TEST_NAME "oom"
#include "testutil.h"
#include <errno.h>
#include <sys/resource.h>

static long vm_size_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %ld kB", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

/* The blocks of one fill, chained through their first word; each also holds its
 * index and a pattern in its last byte. */
struct block { struct block *next; long index; };

/* Allocates blocks of `size` until malloc fails; returns the chain. */
static struct block *fill(size_t size, long *count) {
    struct block *head = NULL;
    long n = 0;
    for (;;) {
        errno = 0;
        struct block *p = malloc(size);
        if (p == NULL) {
            CHECK(errno == ENOMEM, "malloc(%zu) failed with errno %d, not ENOMEM", size, errno);
            break;
        }
        p->next = head;
        p->index = n;
        ((unsigned char *)p)[size - 1] = (unsigned char)(n * 7);
        head = p;
        n++;
        CHECK(n < 100000000, "the address-space limit was never reached with %zu-byte blocks", size);
    }
    *count = n;
    return head;
}

static void verify_and_free(struct block *head, long n, size_t size) {
    long expect = n - 1;
    while (head != NULL) {
        struct block *next = head->next;
        CHECK(head->index == expect && ((unsigned char *)head)[size - 1] == (unsigned char)(expect * 7),
              "block %ld of %zu bytes was corrupted by the failed allocations", expect, size);
        free(head);
        head = next;
        expect--;
    }
    CHECK(expect == -1, "the chain of %zu-byte blocks lost %ld blocks", size, expect + 1);
}

int main(void) {
    shed_address_space_reservations();
    long used = vm_size_kib();
    CHECK(used > 0, "cannot read VmSize");
    struct rlimit rl = { (rlim_t)(used + 300 * 1024) * 1024, RLIM_INFINITY };
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit failed");

    static const size_t sizes[] = { 1 << 20, 200 << 10, 48, 3000 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        long n;
        struct block *chain = fill(sizes[k], &n);
        CHECK(n > 0, "no %zu-byte block could be allocated at all", sizes[k]);
        /* At the limit: every other kind of request fails cleanly too. */
        errno = 0;
        CHECK(malloc(100 << 20) == NULL && errno == ENOMEM, "huge malloc at the limit did not fail with ENOMEM");
        errno = 0;
        CHECK(calloc(1, 8 << 20) == NULL && errno == ENOMEM, "calloc at the limit did not fail with ENOMEM");
        verify_and_free(chain, n, sizes[k]);
        /* Recovered: a block larger than any freed one must now fit. */
        void *big = malloc(100 << 20);
        CHECK(big != NULL, "malloc(100 MiB) failed after freeing %ld blocks of %zu bytes", n, sizes[k]);
        memset(big, 0x5a, 100 << 20);
        free(big);
    }
    printf("oom: allocation failed cleanly at the limit and recovered after frees\n");
    printf("oom: all checks passed\n");
    return 0;
}
