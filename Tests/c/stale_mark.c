/*
 * stale_mark.c — a block whose second word holds bytes copied from a freed block.
 *
 * A free small block carries a mark in its second word that tells free it is
 * already free. Programs copy uninitialized heap bytes about (a realloc from a
 * large block whose pages once held free small blocks copies them; so does a
 * memcpy of a struct's unset padding), and such bytes can be an old mark. Copied to
 * another block, they must not make that block's free report a double free. The
 * test reads a freed block on purpose, as such a copy would: small blocks stay
 * mapped after free.
 */
#define TEST_NAME "stale_mark"
#include "testutil.h"

#include <string.h>

int main(void) {
    int copies = 0;
    for (size_t n = 16; n <= 1024; n += 16) {
        for (int round = 0; round < 8; round++) {
            unsigned char *a = malloc(n);
            unsigned char *b = malloc(n);
            CHECK(a != NULL && b != NULL, "malloc(%zu) failed", n);
            memset(a, 0x5C, n);
            memset(b, 0x3A, n);
            free(a);
            /* a's first two words now hold its free-list link and its mark. */
            unsigned char stale[16];
            memcpy(stale, a, sizeof stale);
            memcpy(b, stale, sizeof stale);
            CHECK(malloc_usable_size(b) >= n, "malloc_usable_size(%zu-byte block) after the copy", n);
            free(b);
            copies++;
        }
    }
    printf("stale_mark: %d blocks freed after their first 16 bytes were copied from a freed block\n", copies);
    return 0;
}
