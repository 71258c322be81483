/*
 * address_limit — a profiled program that runs into its address-space limit
 * (ulimit -v), frees everything and exits must still get its profile.
 *
 *     address_limit     (run under ulimit -v, e.g. 200000)
 *
 * Keeps 3 blocks of 1000 bytes from keep_three, then allocates blocks of 100,000
 * bytes until malloc fails, frees them all and exits. Writing the report needs a
 * scratch mapping, which the limit refused while the heap still held the freed
 * pages: the report was lost ("could not write the report"). The test expects
 * keep_three's 3 blocks in the profile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *kept[3];
static void *filled[1 << 16];

__attribute__((noinline)) static void keep_three(void)
{
    for (int i = 0; i < 3; i++) {
        kept[i] = malloc(1000);
        memset(kept[i], 7, 1000);
    }
}

int main(void)
{
    keep_three();
    size_t n = 0;
    while (n < sizeof filled / sizeof filled[0] && (filled[n] = malloc(100000)) != NULL) n++;
    if (n == sizeof filled / sizeof filled[0]) {
        puts("no limit reached");
        return 1;
    }
    for (size_t i = 0; i < n; i++) free(filled[i]);
    printf("%zu blocks before the limit, all freed\n", n);
    return 0;
}
