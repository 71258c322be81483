/*
 * underscore_exit — a process that ends with _exit or _Exit still writes its
 * profile; a child that shares its parent's memory (vfork, posix_spawn) does not.
 *
 *     underscore_exit
 *
 * The parent keeps 3 blocks of 1000 bytes from leak_parent, forks a child that
 * keeps 7 blocks of 100 bytes from leak_child and ends with _Exit(0), runs a
 * program that does not exist through posix_spawn and through vfork (their
 * children end with _exit(127) in the parent's memory), then prints its own and
 * the child's pid and ends with _exit(3). The test script expects exactly two
 * profiles, the parent's and the child's, with those blocks live.
 */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static void *kept[16];

__attribute__((noinline)) static void leak_parent(void)
{
    for (int i = 0; i < 3; i++) {
        kept[i] = malloc(1000);
        memset(kept[i], 1, 1000);
    }
}

__attribute__((noinline)) static void leak_child(void)
{
    for (int i = 0; i < 7; i++) {
        kept[3 + i] = malloc(100);
        memset(kept[3 + i], 2, 100);
    }
}

int main(void)
{
    leak_parent();
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        leak_child();
        _Exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;

    char *argv[] = {"/nonexistent/program", NULL};
    pid_t spawned;
    if (posix_spawn(&spawned, argv[0], NULL, NULL, argv, environ) == 0) waitpid(spawned, &status, 0);
    pid_t v = vfork();
    if (v == 0) {
        execve(argv[0], argv, environ);
        _exit(127);
    }
    if (v < 0 || waitpid(v, &status, 0) != v || !WIFEXITED(status) || WEXITSTATUS(status) != 127) return 1;

    printf("parent %d\nchild %d\n", (int)getpid(), (int)child);
    fflush(stdout);
    _exit(3);
}
