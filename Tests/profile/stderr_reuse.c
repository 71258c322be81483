/* A program that closes every descriptor above 2, as daemons do (closefrom), and
 * then opens files of its own until one takes number 100, where the allocator
 * keeps its duplicate of stderr for the exit reports. Its file must hold only
 * what the program wrote; the reports go to stderr (still the same file) instead.
 *
 *     stderr_reuse DATA_FILE
 *
 * It keeps one 100-byte block from keep_block() live at exit. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *kept; /* global: the block stays reachable, and the compiler keeps the malloc */

__attribute__((noinline)) static void keep_block(void) {
    kept = malloc(100);
    memset(kept, 7, 100);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: stderr_reuse DATA_FILE\n");
        return 2;
    }
    keep_block();
    for (int fd = 3; fd < 1024; fd++) close(fd);
    int fds[128], n = 0, fd = -1;
    while (n < 128) {
        fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0 || fd >= 100) break;
        fds[n++] = fd;
    }
    if (fd != 100) {
        fprintf(stderr, "stderr_reuse: expected descriptor 100, got %d\n", fd);
        return 1;
    }
    for (int i = 0; i < n; i++) close(fds[i]);
    if (write(fd, "DATA\n", 5) != 5) return 1;
    return 0;
}
