/* A program ended by a signal while every thread allocates: the signal usually
 * lands in a thread that holds one of the allocator's locks, which must still
 * write the profile (as it releases the lock) before the signal ends the process.
 *
 *     signal_busy
 *
 * Four threads (main among them) replace blocks of 1 to 70,000 bytes in a loop
 * (small blocks, page runs, cross-class traffic: the allocator's locks are taken
 * often). Prints "ready PID" once they run; runs until a signal ends it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *churn(void *arg) {
    unsigned k = (unsigned)(unsigned long)arg;
    void *blocks[64] = { 0 };
    for (unsigned i = 0;; i++) {
        unsigned j = (i * 7 + k) % 64;
        free(blocks[j]);
        size_t n = (size_t)(i * 37 + k) % 70000 + 1;
        blocks[j] = malloc(n);
        if (blocks[j] != NULL) memset(blocks[j], (int)i, n < 64 ? n : 64);
    }
    return NULL;
}

int main(void) {
    pthread_t t[3];
    for (unsigned long i = 0; i < 3; i++)
        if (pthread_create(&t[i], NULL, churn, (void *)(i + 1)) != 0) return 1;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    churn(NULL);
    return 0;
}
