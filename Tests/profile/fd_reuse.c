/* A program that puts its own files under the descriptor numbers of libunwind's
 * address-check pipe, as a process launcher does with dup2 before exec.
 *
 *     fd_reuse FILE
 *
 * Under profiling libunwind keeps a pipe whose two numbers it reads, writes and
 * closes. The program finds that pipe among its descriptors (a pipe at 3 or above
 * that it did not open), dup2s FILE onto both numbers, allocates from stacks the
 * walker has not seen (so libunwind is asked), and then writes through the two
 * descriptors. Both must still be FILE, the writes must succeed, and FILE must
 * hold exactly what was written. Prints one line; exit status 0 when all holds,
 * 2 when no such pipe was found (nothing to test). */
#define _GNU_SOURCE
#include <alloca.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Each depth is a new stack; alloca makes the frames need their frame pointer. */
__attribute__((noinline)) static void *deep_malloc(int depth) {
    volatile char *buf = alloca(512 + (size_t)depth * 64);
    buf[0] = 0;
    if (depth > 0) return deep_malloc(depth - 1);
    return malloc(64);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: fd_reuse FILE\n"); return 2; }
    for (int i = 1; i <= 3; i++) free(deep_malloc(i));
    int pipe_fds[2], found = 0;
    for (int fd = 3; fd < 64 && found < 2; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) pipe_fds[found++] = fd;
    }
    if (found < 2) { printf("fd_reuse: no pipe of the profiler's found\n"); return 2; }
    int file = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct stat want;
    if (file < 0 || fstat(file, &want) != 0) { perror("fd_reuse: open"); return 2; }
    for (int i = 0; i < 2; i++)
        if (dup2(file, pipe_fds[i]) != pipe_fds[i]) { perror("fd_reuse: dup2"); return 2; }
    close(file);
    for (int i = 4; i <= 40; i++) free(deep_malloc(i));
    int same = 1, written = 1;
    for (int i = 0; i < 2; i++) {
        struct stat st;
        same &= fstat(pipe_fds[i], &st) == 0 && st.st_ino == want.st_ino && st.st_dev == want.st_dev;
        written &= write(pipe_fds[i], i == 0 ? "first\n" : "second\n", i == 0 ? 6 : 7) == (i == 0 ? 6 : 7);
    }
    char content[64] = "";
    FILE *f = fopen(argv[1], "r");
    size_t n = f != NULL ? fread(content, 1, sizeof content - 1, f) : 0;
    if (f != NULL) fclose(f);
    content[n] = 0;
    int exact = strcmp(content, "first\nsecond\n") == 0;
    printf("fd_reuse: descriptors %d and %d %s; writes %s; file %s\n", pipe_fds[0], pipe_fds[1],
           same ? "still the program's file" : "taken over", written ? "succeeded" : "failed",
           exact ? "exact" : "changed");
    return same && written && exact ? 0 : 1;
}
