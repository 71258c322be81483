/* A program that ends holding every descriptor it may have (a descriptor leak).
 *
 *     descriptors_exhausted
 *
 * Lowers its soft descriptor limit to 64 (the hard one to 128), keeps 20 blocks
 * from leak_at_exit, opens /dev/null until open fails with EMFILE, and returns.
 * The profile and the statistics file written at exit each need a descriptor:
 * the library must make room (the soft limit raised by one while it writes)
 * rather than lose them. Prints one line. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

void *kept[20];

/* Stores the block itself, so the call to malloc is no tail call. */
__attribute__((noinline)) static void leak_at_exit(int i, size_t n) { kept[i] = malloc(n); }

int main(void) {
    struct rlimit limit = {64, 128};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) { perror("descriptors_exhausted: setrlimit"); return 2; }
    for (int i = 0; i < 20; i++) leak_at_exit(i, 500);
    int opened = 0;
    while (open("/dev/null", O_RDONLY) >= 0) opened++;
    printf("descriptors_exhausted: opened %d more descriptors, then %s\n", opened, errno == EMFILE ? "EMFILE" : "another error");
    fflush(stdout);
    return errno == EMFILE ? 0 : 2;
}
