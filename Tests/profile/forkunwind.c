// A fork while another thread is inside libunwind, which holds the loader's
// dl_iterate_phdr lock while it looks up unwind information. glibc does not reset
// that lock in the child, so a child forked at that moment hangs the first time
// anything in it calls dl_iterate_phdr again — a stack capture of the profiler
// included. The library must let the fork wait for its own captures to leave
// libunwind.
//
// The program interposes dl_iterate_phdr (it is linked with -rdynamic): on the
// "victim" thread, once armed, the first callback sleeps 300 ms with the lock held.
// The main thread forks while the victim sleeps there; the child allocates from a
// stack the profiler has not seen (its capture needs libunwind) and must exit
// within 10 s. Exit status 0: the child finished; 1: it hung (and was killed) or
// failed.
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*iterate_cb)(struct dl_phdr_info *, size_t, void *);
static int (*real_iterate)(iterate_cb, void *);
static pthread_t victim;
static volatile int victim_armed, victim_inside, victim_done;

struct wrapped { iterate_cb cb; void *data; int stalled; };

static int stalling_cb(struct dl_phdr_info *info, size_t size, void *data) {
    struct wrapped *w = data;
    if (!w->stalled && victim_armed && pthread_equal(pthread_self(), victim)) {
        w->stalled = 1;
        victim_armed = 0;
        __atomic_store_n(&victim_inside, 1, __ATOMIC_SEQ_CST);
        struct timespec t = {0, 300 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    return w->cb(info, size, w->data);
}

int dl_iterate_phdr(iterate_cb cb, void *data) {
    if (real_iterate == NULL) real_iterate = (int (*)(iterate_cb, void *))dlsym(RTLD_NEXT, "dl_iterate_phdr");
    struct wrapped w = {cb, data, 0};
    return real_iterate(stalling_cb, &w);
}

__attribute__((noinline)) static void *victim_alloc(size_t n) {
    void *p = malloc(n);
    if (p) memset(p, 1, n);
    return p;
}

static void *victim_main(void *arg) {
    (void)arg;
    victim_armed = 1;
    // The thread's first capture walks a stack with libunwind (its frames have
    // no learned rules yet, and sampled captures always use libunwind).
    for (int i = 0; i < 64 && !__atomic_load_n(&victim_inside, __ATOMIC_SEQ_CST); i++) free(victim_alloc(100 + (size_t)i));
    __atomic_store_n(&victim_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

__attribute__((noinline)) static void *child_alloc(size_t n) {
    void *p = malloc(n);
    if (p) memset(p, 2, n);
    return p;
}

int main(void) {
    if (pthread_create(&victim, NULL, victim_main, NULL) != 0) return 1;
    for (int i = 0; i < 2000 && !__atomic_load_n(&victim_inside, __ATOMIC_SEQ_CST) && !__atomic_load_n(&victim_done, __ATOMIC_SEQ_CST); i++) {
        struct timespec t = {0, 1000 * 1000};
        nanosleep(&t, NULL);
    }
    if (!__atomic_load_n(&victim_inside, __ATOMIC_SEQ_CST)) {
        fprintf(stderr, "forkunwind: the victim thread never reached dl_iterate_phdr (is profiling on?)\n");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
        // A stack the profiler has not seen in this process: its capture needs libunwind.
        for (int i = 0; i < 100; i++) free(child_alloc(200 + (size_t)i));
        _exit(0);
    }
    // libunwind blocks every signal while it waits for its lock, so the child cannot
    // time itself out: the parent gives it 10 s.
    int status = 0, waited = 0;
    for (int i = 0; i < 1000 && waited == 0; i++) {
        waited = (int)waitpid(pid, &status, WNOHANG);
        if (waited == 0) {
            struct timespec t = {0, 10 * 1000 * 1000};
            nanosleep(&t, NULL);
        }
    }
    if (waited == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        pthread_join(victim, NULL);
        fprintf(stderr, "forkunwind: the child hung for 10 s (in libunwind or dl_iterate_phdr)\n");
        return 1;
    }
    pthread_join(victim, NULL);
    if (waited != pid) return 1;
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "forkunwind: the child was killed by signal %d\n", WTERMSIG(status));
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "forkunwind: the child failed (status %d)\n", status);
        return 1;
    }
    printf("forkunwind: the child forked while another thread was in dl_iterate_phdr finished\n");
    return 0;
}
