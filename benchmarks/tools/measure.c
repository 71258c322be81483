/* measure: run a command once and report its wall time and peak RSS.
 *
 *     measure [-p LIB] [-t SECONDS] -o RESULT -- COMMAND [ARG...]
 *
 * -p LIB      set LD_PRELOAD=LIB for COMMAND only (measure itself runs without it)
 * -t SECONDS  kill COMMAND's process group after this long (default: none)
 * -o RESULT   file that receives "key=value" lines:
 *               wall_s, user_s, sys_s, maxrss_kib, exit (exit status) or
 *               signal (terminating signal), timed_out (0/1)
 *
 * COMMAND's stdin, stdout and stderr are measure's own. Peak RSS is the
 * ru_maxrss that wait4(2) returns for the child, which covers the children it
 * waited for (gcc's cc1, for instance).
 *
 * Why a separate program: ru_maxrss survives exec, so a child forked from a
 * large process (the python3 runner) would report the parent's RSS as its
 * own peak. Forked from this small program, the floor is well under 1 MiB.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static pid_t child;

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    if (child > 0) kill(-child, SIGKILL);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec * 1e-6; }

int main(int argc, char **argv) {
    const char *preload = NULL, *result = NULL;
    unsigned timeout = 0;
    int opt;
    while ((opt = getopt(argc, argv, "+p:t:o:")) != -1) {
        switch (opt) {
        case 'p': preload = optarg; break;
        case 't': timeout = (unsigned)atoi(optarg); break;
        case 'o': result = optarg; break;
        default: goto usage;
        }
    }
    if (!result || optind >= argc) goto usage;

    FILE *out = fopen(result, "w");
    if (!out) {
        perror(result);
        return 125;
    }
    unsetenv("LD_PRELOAD");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);

    double t0 = now();
    child = fork();
    if (child < 0) {
        perror("fork");
        return 125;
    }
    if (child == 0) {
        setpgid(0, 0); /* its own group, so a timeout kills everything it started */
        if (preload && *preload) setenv("LD_PRELOAD", preload, 1);
        execvp(argv[optind], &argv[optind]);
        fprintf(stderr, "measure: cannot run %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    setpgid(child, child);
    if (timeout) alarm(timeout);
    int status;
    struct rusage ru;
    pid_t r;
    do {
        r = wait4(child, &status, 0, &ru);
    } while (r < 0 && errno == EINTR);
    double wall = now() - t0;
    alarm(0);
    if (r < 0) {
        perror("wait4");
        return 125;
    }
    fprintf(out, "wall_s=%.6f\nuser_s=%.6f\nsys_s=%.6f\nmaxrss_kib=%ld\n", wall, tv(ru.ru_utime),
            tv(ru.ru_stime), ru.ru_maxrss);
    if (WIFEXITED(status)) fprintf(out, "exit=%d\n", WEXITSTATUS(status));
    if (WIFSIGNALED(status)) fprintf(out, "signal=%d\n", WTERMSIG(status));
    fprintf(out, "timed_out=%d\n", (int)timed_out);
    fclose(out);
    return 0;

usage:
    fprintf(stderr, "usage: measure [-p LIB] [-t SECONDS] -o RESULT -- COMMAND [ARG...]\n");
    return 125;
}
