/* A program that allocates rarely: its timeline must still show the heap's peak.
 *
 *     timeline_sparse
 *
 * Twenty 100,000-byte blocks, one every 10 ms (each a new peak of the heap),
 * then all freed. The report's timeline must reach 2,000,000 bytes requested. */
#include <stdlib.h>
#include <time.h>

int main(void) {
    void *blocks[20];
    struct timespec pause = { 0, 10 * 1000 * 1000 };
    for (int i = 0; i < 20; i++) {
        blocks[i] = malloc(100000);
        if (blocks[i] == NULL) return 1;
        nanosleep(&pause, NULL);
    }
    for (int i = 0; i < 20; i++) free(blocks[i]);
    return 0;
}
