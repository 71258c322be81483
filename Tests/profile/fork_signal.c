/* A signal sent to a child the moment it is forked.
 *
 *     fork_signal [CHILDREN]   (default 20)
 *
 * Each child runs a few allocations and then waits in pause(); the parent sends
 * it SIGTERM (SIGHUP for every other child) as soon as fork returns, as
 * multiprocessing's Pool.terminate does with workers it has just started. With the
 * library's report handler installed (statistics or profiling on), the signal
 * often arrives while the child's fork handler still holds the locks inherited
 * from the fork; it must still end the child, by that signal. Prints one line;
 * exit status 0 when every child died of its signal within 5 s. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20, survived = 0, wrong = 0;
    free(malloc(10));
    for (int i = 0; i < n; i++) {
        int sig = i % 2 ? SIGHUP : SIGTERM;
        pid_t pid = fork();
        if (pid < 0) { perror("fork_signal: fork"); return 2; }
        if (pid == 0) {
            for (int j = 0; j < 1000; j++) free(malloc(100 + (size_t)j));
            for (;;) pause();
        }
        kill(pid, sig);
        int status = 0;
        pid_t r = 0;
        for (int t = 0; t < 500 && r == 0; t++) {
            r = waitpid(pid, &status, WNOHANG);
            if (r == 0) usleep(10000);
        }
        if (r == 0) {
            survived++;
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        } else if (!WIFSIGNALED(status) || WTERMSIG(status) != sig) {
            wrong++;
        }
    }
    printf("fork_signal: %d children: %d still alive 5 s after their signal, %d ended otherwise\n", n, survived, wrong);
    return survived == 0 && wrong == 0 ? 0 : 1;
}
