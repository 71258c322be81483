/*
 * exit_race — a thread that calls exit() while another thread is already
 * exiting must not cut off the profile the library writes at exit.
 *
 *     exit_race
 *
 * Keeps 5 blocks of 2000 bytes from leak_before_exit, starts a thread that waits,
 * and calls exit(7). The program's destructor, which runs inside that exit
 * before the library's (the program's destructors come first), wakes the thread,
 * which calls exit(9), and waits 300 ms for it. glibc 2.36 lets the second exit
 * end the process at once, before the library's destructor has written anything;
 * the test expects exit status 7 and a complete profile with those blocks live.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *kept[5];
static atomic_int go;

__attribute__((noinline)) static void leak_before_exit(void)
{
    for (int i = 0; i < 5; i++) {
        kept[i] = malloc(2000);
        memset(kept[i], 3, 2000);
    }
}

static void *second_exit(void *arg)
{
    (void)arg;
    while (!atomic_load(&go)) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    exit(9);
}

__attribute__((destructor)) static void program_destructor(void)
{
    atomic_store(&go, 1);
    struct timespec wait = {0, 300000000};
    nanosleep(&wait, NULL);
}

int main(void)
{
    leak_before_exit();
    pthread_t t;
    if (pthread_create(&t, NULL, second_exit, NULL) != 0) return 1;
    exit(7);
}
