/* Blocks resized in place, many times: every realloc is an allocation of its new
 * size (and a free of the old), in full and in sampled mode, and the heap's
 * requested bytes follow them.
 *
 *     realloc_chain
 *
 * grow: one block from 20,000 bytes to 22,528 by 1-byte reallocs (most in place,
 * a move where it crosses a size class); shrink: one from 3,000 bytes down to
 * 1,600 (all in place). Both stay live: 3,930 allocations, 3,928 frees, 2 blocks
 * and 24,128 bytes live at exit. Writes nothing (no stdio buffer). */
#include <stdlib.h>

void *kept[2];

__attribute__((noinline)) static void *grow(void) {
    void *p = malloc(20000);
    for (size_t n = 20001; n <= 22528 && p != NULL; n++) p = realloc(p, n);
    return p;
}

__attribute__((noinline)) static void *shrink(void) {
    void *p = malloc(3000);
    for (size_t n = 2999; n >= 1600 && p != NULL; n--) p = realloc(p, n);
    return p;
}

int main(void) {
    kept[0] = grow();
    kept[1] = shrink();
    return kept[0] != NULL && kept[1] != NULL ? 0 : 1;
}
