/*
 * sampled_weights — allocations the sampling profiler must estimate without bias.
 *
 *     sampled_weights
 *
 * grow_from_null makes 1,000,000 blocks of 64 bytes with realloc(NULL, 64)
 * (through a pointer the compiler cannot see is NULL, so the call stays a
 * realloc) and frees each; mean_sized makes 2,000 blocks of 65,536 bytes, the
 * mean sampling gap the test uses, and frees each. With one sample per 65,536
 * bytes each site's estimated allocations and bytes must be within 12% of the
 * truth: a sample of a 65,536-byte block stands for 1/(1 - 1/e) = 1.58 blocks,
 * which a count in whole blocks made 2 (26% too many), and realloc(NULL, n)
 * was never sampled at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile no_block;

__attribute__((noinline)) static void grow_from_null(void)
{
    for (int i = 0; i < 1000000; i++) {
        char *p = realloc(no_block, 64);
        if (p == NULL) exit(1);
        p[0] = 1;
        free(p);
    }
}

__attribute__((noinline)) static void mean_sized(void)
{
    for (int i = 0; i < 2000; i++) {
        char *p = malloc(65536);
        if (p == NULL) exit(1);
        p[0] = 1;
        free(p);
    }
}

int main(void)
{
    grow_from_null();
    mean_sized();
    puts("done");
    return 0;
}
