/* A program that a signal ends before it can exit: it keeps 100 blocks of 48
 * bytes from hold_blocks(), starts a thread that keeps allocating and freeing,
 * and then sends itself the signal named on its command line (INT, TERM, HUP or
 * PIPE; PIPE by writing to a pipe whose reader is gone). With "own" it first
 * installs a handler of its own for that signal, which must be the one that runs
 * (the program then exits normally with status 3). The program must see the
 * signal's action as the default, as it would without the library, although the
 * library's report handler is installed (or ignored, when it inherited that):
 * sigaction's answer, and signal's return value when "own" replaces it (status 4
 * otherwise).
 *
 *     signal_end INT|TERM|HUP|PIPE [own] */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *held[100];   /* global: reachable, and the compiler keeps the calls */
static volatile sig_atomic_t own_handler_ran;

__attribute__((noinline)) static void hold_blocks(void) {
    for (int i = 0; i < 100; i++) {
        held[i] = malloc(48);
        memset(held[i], i, 48);
    }
}

static void *churn(void *arg) {
    (void)arg;
    for (;;) {
        void *p = malloc(64 + (size_t)(rand() % 512));
        memset(p, 1, 64);
        free(p);
    }
    return NULL;
}

static void own(int sig) { (void)sig; own_handler_ran = 1; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: signal_end INT|TERM|HUP|PIPE [own]\n");
        return 2;
    }
    int sig = strcmp(argv[1], "INT") == 0 ? SIGINT : strcmp(argv[1], "TERM") == 0 ? SIGTERM
            : strcmp(argv[1], "HUP") == 0 ? SIGHUP : strcmp(argv[1], "PIPE") == 0 ? SIGPIPE : 0;
    if (sig == 0) return 2;
    struct sigaction seen;
    if (sigaction(sig, NULL, &seen) != 0 || (seen.sa_flags & SA_SIGINFO) ||
        (seen.sa_handler != SIG_DFL && seen.sa_handler != SIG_IGN)) {
        fprintf(stderr, "signal_end: sigaction says SIG%s has a handler\n", argv[1]);
        return 4;
    }
    if (argc > 2 && strcmp(argv[2], "own") == 0 && signal(sig, own) != SIG_DFL) {
        fprintf(stderr, "signal_end: signal() says the action of SIG%s was not the default\n", argv[1]);
        return 4;
    }
    hold_blocks();
    pthread_t t;
    pthread_create(&t, NULL, churn, NULL);
    usleep(20000);
    if (sig == SIGPIPE) {
        int fds[2];
        if (pipe(fds) != 0) return 1;
        close(fds[0]);
        (void)!write(fds[1], "x", 1);
    } else {
        kill(getpid(), sig);
    }
    usleep(20000);
    if (own_handler_ran) return 3;
    fprintf(stderr, "signal_end: still running after the signal\n");
    return 1;
}
