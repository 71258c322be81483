/* The heap's peak under full profiling when threads take turns: each thread's
 * counts are merged into the shared ones a few hundred events later, so a thread
 * that freed its block and then waits leaves that free unmerged while the next
 * thread's allocation is merged. The peak must still be the heap's true one.
 *
 *     peak_threads
 *
 * 16 threads, one at a time (a turn passed round under a mutex), each allocate a
 * 256 KiB block, write it, free it and pass the turn on; 4 rounds. At most one
 * such block is live at any moment, so the requested peak is about 256 KiB (the
 * program's other blocks are a few KiB), never 16 of them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 16
#define ROUNDS 4
#define BLOCK (256 * 1024)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int turn;

__attribute__((noinline)) static void use_block(int id)
{
    char *p = malloc(BLOCK);
    if (p == NULL) exit(2);
    memset(p, id, BLOCK);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_lock(&lock);
        while (turn % THREADS != id) pthread_cond_wait(&changed, &lock);
        use_block(id);
        turn++;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) return 1;
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    printf("%d turns\n", turn);
    return turn == THREADS * ROUNDS ? 0 : 1;
}
