/* A stand-in for the library's profile writer, for testing `swiftmalloc run`
 * on its own: preloaded in place of libswiftmalloc.so, it does no allocating
 * of its own and, when a process exits normally with SWIFTMALLOC_PROFILE or
 * SWIFTMALLOC_PROFILE_SAMPLE set, copies the profile named by
 * FAKE_PROFILE_SOURCE to SWIFTMALLOC_REPORT, with %p replaced by the pid.
 *
 *   cc -shared -fPIC fake-recorder.c -o libfake.so
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((destructor)) static void write_profile(void) {
    const char *source = getenv("FAKE_PROFILE_SOURCE");
    const char *template = getenv("SWIFTMALLOC_REPORT");
    if (!source || !template) return;
    if (!getenv("SWIFTMALLOC_PROFILE") && !getenv("SWIFTMALLOC_PROFILE_SAMPLE")) return;

    char path[4096], pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    size_t n = 0;
    for (const char *t = template; *t && n + 32 < sizeof path; t++) {
        if (t[0] == '%' && t[1] == 'p') {
            n += (size_t)snprintf(path + n, sizeof path - n, "%s", pid);
            t++;
        } else {
            path[n++] = *t;
        }
    }
    path[n] = 0;

    int in = open(source, O_RDONLY);
    if (in < 0) return;
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) {
        char buf[8192];
        ssize_t got;
        while ((got = read(in, buf, sizeof buf)) > 0) {
            if (write(out, buf, (size_t)got) != got) break;
        }
        close(out);
    }
    close(in);
}
