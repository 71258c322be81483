/*
 * side_by_side.c — SwiftMalloc next to the system allocator, with
 * libswiftmalloc-prefixed.so. That library defines only the swiftmalloc_
 * functions: malloc, free, strdup's copies, stdio's buffers and every library in
 * the process keep using glibc, while the program puts the blocks it chooses in
 * SwiftMalloc. Each allocator keeps its own books (mallinfo2 against
 * swiftmalloc_mallinfo2).
 *
 * A block must be freed by the allocator that made it. swiftmalloc_free() of a
 * glibc block is caught — SwiftMalloc's page map knows the pointer is not its
 * own — and the process is stopped with a one-line message:
 *
 *   swiftmalloc: free(): invalid pointer 0x55d0c8a2b2a0 (not allocated by swiftmalloc, or already freed)
 *
 * The program shows that in a child process, so that it can report the outcome.
 * (The opposite mistake, free() of a SwiftMalloc block, goes to glibc, which
 * may or may not notice: don't.)
 *
 *   cc -O2 side_by_side.c $(pkg-config --cflags --libs swiftmalloc-prefixed) \
 *      -Wl,-rpath,$(pkg-config --variable=libdir swiftmalloc-prefixed) -o side_by_side
 *   ./side_by_side
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <swiftmalloc.h>

static const char *library_of(const char *symbol)
{
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, symbol);
    if (f == NULL || dladdr(f, &info) == 0 || info.dli_fname == NULL)
        return "(not found)";
    return info.dli_fname;
}

int main(void)
{
    printf("malloc             comes from %s\n", library_of("malloc"));
    printf("swiftmalloc_malloc comes from %s\n", library_of("swiftmalloc_malloc"));

    /* The same request to each allocator. */
    size_t glibc_before = mallinfo2().uordblks;
    size_t swm_before = swiftmalloc_mallinfo2().uordblks;
    char *from_glibc = malloc(1000);
    char *from_swiftmalloc = swiftmalloc_malloc(1000);
    if (from_glibc == NULL || from_swiftmalloc == NULL) {
        perror("side_by_side");
        return 1;
    }
    strcpy(from_glibc, "held by glibc");
    strcpy(from_swiftmalloc, "held by SwiftMalloc");
    printf("malloc(1000)             = %p, malloc_usable_size %zu\n",
           (void *)from_glibc, malloc_usable_size(from_glibc));
    printf("swiftmalloc_malloc(1000) = %p, swiftmalloc_usable_size %zu\n",
           (void *)from_swiftmalloc, swiftmalloc_usable_size(from_swiftmalloc));
    printf("glibc bytes in use:       %zu -> %zu\n", glibc_before, (size_t)mallinfo2().uordblks);
    printf("SwiftMalloc bytes in use: %zu -> %zu\n", swm_before, (size_t)swiftmalloc_mallinfo2().uordblks);

    /* Each block back to its own allocator. */
    free(from_glibc);
    swiftmalloc_free(from_swiftmalloc);
    printf("after free / swiftmalloc_free: SwiftMalloc bytes in use %zu\n",
           (size_t)swiftmalloc_mallinfo2().uordblks);

    /* The mistake, in a child: a glibc block given to swiftmalloc_free. */
    char *wrong = malloc(64);
    printf("swiftmalloc_free(%p), a block from glibc's malloc, in a child process:\n", (void *)wrong);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core); /* the abort need not leave a core file */
        swiftmalloc_free(wrong);          /* prints the message and aborts */
        _exit(0);                         /* not reached */
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        return 1;
    }
    free(wrong);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) {
        printf("the child was stopped by SIGABRT: the cross-allocator free was caught\n");
        return 0;
    }
    printf("unexpected: the child %s %d\n", WIFSIGNALED(status) ? "died of signal" : "exited with status",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    return 1;
}
