/*
 * errno_contention — a malloc or free that succeeds leaves errno as it was, also
 * when it waited for a lock another thread held.
 *
 *     errno_contention
 *
 * Eight threads each make 60,000 malloc/free pairs, three in four of 40 to 440
 * KiB (page-heap blocks, under one lock) and the rest small, setting errno to 0
 * before each call and checking it after. A lock that had to wait used to leave
 * the futex wait's EAGAIN in errno.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_long changed;

static void *run(void *arg)
{
    unsigned s = (unsigned)(long)arg;
    for (int i = 0; i < 60000; i++) {
        size_t n = (rand_r(&s) % 4) ? 40000 + rand_r(&s) % 400000 : 16 + rand_r(&s) % 4000;
        errno = 0;
        char *p = malloc(n);
        if (p == NULL) exit(2);
        if (errno != 0 && atomic_fetch_add(&changed, 1) == 0) fprintf(stderr, "malloc(%zu) set errno %d\n", n, errno);
        p[0] = 1;
        errno = 0;
        free(p);
        if (errno != 0 && atomic_fetch_add(&changed, 1) == 0) fprintf(stderr, "free of %zu bytes set errno %d\n", n, errno);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[8];
    for (long i = 0; i < 8; i++)
        if (pthread_create(&t[i], NULL, run, (void *)i) != 0) return 1;
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    printf("%ld calls changed errno\n", atomic_load(&changed));
    return atomic_load(&changed) != 0;
}
