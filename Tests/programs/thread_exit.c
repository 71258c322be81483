// Process lifetime when every thread ends with pthread_exit().
//
// glibc ends a process with exit(0) when its last thread exits, whether that
// is the main thread or not. Python relies on this in a child forked from a
// non-main thread (its test_threading does exactly that), and so do C
// programs whose main() calls pthread_exit(). A thread created by the
// allocator must not keep such a process alive.
//
// Each scenario runs in a child process; the supervisor waits for it with a
// deadline, kills it if it is still there, and prints what happened. Output
// is deterministic: one line per scenario plus the lines the scenarios print
// themselves (which are only flushed by that final exit(0)).
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEADLINE_MS 5000

// Allocate and free enough to leave the allocator with free, dirty memory.
static void churn(void) {
    void *blocks[64];
    for (int i = 0; i < 64; i++) {
        blocks[i] = malloc(256 * 1024);
        memset(blocks[i], 1, 256 * 1024);
    }
    for (int i = 0; i < 64; i++) free(blocks[i]);
    for (int i = 0; i < 20000; i++) free(malloc(16 + i % 3000));
}

static void *churn_thread(void *arg) {
    churn();
    printf("  %s: worker done\n", (const char *)arg);
    return NULL;
}

// main() starts a worker and leaves with pthread_exit().
static void scenario_main_exit(void) {
    pthread_t t;
    churn();
    pthread_create(&t, NULL, churn_thread, "main-exit");
    pthread_exit(NULL);
}

// A worker forks; in the child the forking thread is the only thread. It
// starts and joins another thread, then leaves with pthread_exit().
static void *fork_worker(void *arg) {
    (void)arg;
    churn();
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t t;
        churn();
        pthread_create(&t, NULL, churn_thread, "fork-from-thread child");
        pthread_join(t, NULL);
        pthread_exit(NULL);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    printf("  fork-from-thread: grandchild status %d\n", status);
    return NULL;
}

static void scenario_fork_from_thread(void) {
    pthread_t t;
    pthread_create(&t, NULL, fork_worker, NULL);
    pthread_exit(NULL);
}

static long elapsed_ms(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static int run(const char *name, void (*scenario)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);  // so that a stuck scenario can be killed with its children
        scenario();
        _exit(3);  // not reached
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (elapsed_ms(&start) > DEADLINE_MS) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            printf("%s: still running %d ms after its threads exited (killed)\n", name, DEADLINE_MS);
            return 1;
        }
        struct timespec nap = {0, 10 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (WIFEXITED(status)) {
        printf("%s: exited with status %d\n", name, WEXITSTATUS(status));
        return WEXITSTATUS(status) != 0;
    }
    printf("%s: killed by signal %d\n", name, WTERMSIG(status));
    return 1;
}

int main(void) {
    int failures = 0;
    failures += run("main-exit", scenario_main_exit);
    failures += run("fork-from-thread", scenario_fork_from_thread);
    return failures == 0 ? 0 : 1;
}
