#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
// The reserved C names, each a single jump to the Swift entry point of the same
// function under the `swiftmalloc_` prefix. The prefixed symbols are protected:
// exported, but bound inside this library, so the jump needs no PLT.
#define SWM_PROTECT(impl) extern char impl[] __attribute__((visibility("protected")));
#define SWM_FORWARD(pub, impl)                                                        \
    __asm__(".text\n.globl " #pub "\n.type " #pub ",@function\n.p2align 4\n" #pub    \
            ":\n\tjmp " #impl "\n.size " #pub ", .-" #pub "\n");

#define SWM_API(X)                                  \
    X(reallocarray, swiftmalloc_reallocarray)       \
    X(posix_memalign, swiftmalloc_posix_memalign)   \
    X(aligned_alloc, swiftmalloc_aligned_alloc)     \
    X(memalign, swiftmalloc_memalign)               \
    X(valloc, swiftmalloc_valloc)                   \
    X(pvalloc, swiftmalloc_pvalloc)                 \
    X(malloc_usable_size, swiftmalloc_usable_size)  \
    X(malloc_trim, swiftmalloc_trim)                \
    X(mallinfo2, swiftmalloc_mallinfo2)             \
    X(mallinfo, swiftmalloc_mallinfo)               \
    X(malloc_stats, swiftmalloc_malloc_stats)       \
    X(malloc_info, swiftmalloc_info)                \
    X(mallopt, swiftmalloc_mallopt)                 \
    X(free_sized, swiftmalloc_free_sized)           \
    X(free_aligned_sized, swiftmalloc_free_aligned_sized) \
    X(__libc_memalign, swiftmalloc_memalign)        \
    X(__libc_valloc, swiftmalloc_valloc)            \
    X(__libc_pvalloc, swiftmalloc_pvalloc)          \
    X(__libc_mallinfo, swiftmalloc_mallinfo)        \
    X(__libc_mallopt, swiftmalloc_mallopt)

#define SWM_DECLARE(pub, impl) SWM_PROTECT(impl)
#define SWM_REFERENCE(pub, impl) (void *)impl,
SWM_API(SWM_DECLARE)
SWM_PROTECT(swiftmalloc_malloc)
SWM_PROTECT(swiftmalloc_calloc)
SWM_PROTECT(swiftmalloc_realloc)
SWM_PROTECT(swiftmalloc_free)
__attribute__((used)) static void *const swm_protected_refs[] = { SWM_API(SWM_REFERENCE) };
/// The program's dlopen calls so far, counted before libc's dlopen runs (none in
/// the prefixed build, which has no dlopen): the frame-pointer walk's code table
/// looks for new objects at its next miss when this has changed (unwind.c).
__attribute__((visibility("hidden"))) unsigned long swm_dlopen_calls;
// The prefixed-only build (libswiftmalloc-prefixed.so) leaves the reserved names
// to the system allocator and exports only the swiftmalloc_* functions.
#ifndef SWIFTMALLOC_PREFIXED_ONLY
SWM_API(SWM_FORWARD)

// malloc, calloc, realloc and free jump through a pointer instead, still one
// instruction: the sampling profiler points malloc at a variant of the fast path
// that counts bytes, full profiling points the first three at entries that
// capture the caller's stack first (swm_select_entries), and tracking points free
// at an entry for tracked blocks (swm_use_tracked_free). Everything else, and
// the prefixed functions, are direct.
__attribute__((visibility("hidden"))) void *swm_malloc_entry = (void *)swiftmalloc_malloc;
__attribute__((visibility("hidden"))) void *swm_calloc_entry = (void *)swiftmalloc_calloc;
__attribute__((visibility("hidden"))) void *swm_realloc_entry = (void *)swiftmalloc_realloc;
__attribute__((visibility("hidden"))) void *swm_free_entry = (void *)swiftmalloc_free;
#define SWM_FORWARD_INDIRECT(pub, entry)                                              \
    __asm__(".text\n.globl " #pub "\n.type " #pub ",@function\n.p2align 4\n" #pub  \
            ":\n\tjmp *swm_" #entry "_entry(%rip)\n.size " #pub ", .-" #pub "\n");
SWM_FORWARD_INDIRECT(malloc, malloc)
SWM_FORWARD_INDIRECT(calloc, calloc)
SWM_FORWARD_INDIRECT(realloc, realloc)
SWM_FORWARD_INDIRECT(free, free)
SWM_FORWARD_INDIRECT(cfree, free)
// glibc's own names for its allocator (__libc_malloc, …), which some programs and
// malloc wrappers call directly: theirs too, so that no block from glibc's heap
// reaches this free, nor one of ours glibc's.
SWM_FORWARD_INDIRECT(__libc_malloc, malloc)
SWM_FORWARD_INDIRECT(__libc_calloc, calloc)
SWM_FORWARD_INDIRECT(__libc_realloc, realloc)
SWM_FORWARD_INDIRECT(__libc_free, free)

// dlclose: code the program unloads may be replaced by other code at the same
// addresses, which the profiler's learned frame rules (and libunwind's caches)
// would describe wrongly, so they are forgotten after every unload, and the
// unloaded libraries' mappings are kept for the report (swm_dlclose, unwind.c).
// Passed on to the next definition (libc's); costs one load when profiling is off.
extern void *swm_next_definition(void **slot, const char *name);

// dlopen: RTLD_DEEPBIND is taken off. A library opened with it resolves its own
// references in its own dependencies first, libc among them, so its malloc and free
// would be libc's while the rest of the process uses this library's, and the first
// block to cross between them ends the program (PHP opens its extensions so).
// SWIFTMALLOC_DEEPBIND=1 keeps the flag. dlopen takes the library that calls it from
// its return address (whose search paths apply), so this jumps to libc's dlopen,
// leaving the caller's return address in place. x86-64 only; elsewhere the flag
// stays as the program passed it.
__attribute__((visibility("hidden"))) void *swm_next_dlopen;
__attribute__((visibility("hidden"))) unsigned char swm_keep_deepbind;
__attribute__((visibility("hidden"), used)) void *swm_dlopen_resolve(void) {
    return swm_next_definition(&swm_next_dlopen, "dlopen");
}
extern const char *swm_getenv(const char *name);
__attribute__((constructor)) static void swm_dlopen_setup(void) {
    const char *keep = swm_getenv("SWIFTMALLOC_DEEPBIND");
    swm_keep_deepbind = keep != NULL && keep[0] == '1' && keep[1] == 0;
    (void)swm_dlopen_resolve();
}
#if defined(__x86_64__)
_Static_assert(RTLD_DEEPBIND == 8, "RTLD_DEEPBIND is cleared with andl $-9");
__asm__(".text\n.globl dlopen\n.type dlopen,@function\n.p2align 4\n"
        "dlopen:\n"
        "\tlock addq $1, swm_dlopen_calls(%rip)\n"
        "\tmovq swm_next_dlopen(%rip), %rax\n"
        "\ttestq %rax, %rax\n"
        "\tjz 2f\n"
        "1:\tcmpb $0, swm_keep_deepbind(%rip)\n"
        "\tjne 3f\n"
        "\tandl $-9, %esi\n"
        "3:\tjmp *%rax\n"
        // Not looked up yet (a call before the constructor): look it up, keeping
        // the arguments, then jump; NULL when libc has none.
        "2:\tpushq %rdi\n"
        "\tpushq %rsi\n"
        "\tsubq $8, %rsp\n"
        "\tcall swm_dlopen_resolve\n"
        "\taddq $8, %rsp\n"
        "\tpopq %rsi\n"
        "\tpopq %rdi\n"
        "\ttestq %rax, %rax\n"
        "\tjnz 1b\n"
        "\tret\n"
        ".size dlopen, .-dlopen\n");
#endif

extern int swm_dlclose(int (*next)(void *), void *handle);
typedef int (*swm_dlclose_fn)(void *);
int dlclose(void *handle) {
    static swm_dlclose_fn next;
    if (swm_next_definition((void **)&next, "dlclose") == NULL) return -1;
    return swm_dlclose(next, handle);
}
#endif

void swm_select_entries(void *malloc_entry, void *calloc_entry, void *realloc_entry) {
#ifndef SWIFTMALLOC_PREFIXED_ONLY
    __atomic_store_n(&swm_malloc_entry, malloc_entry, __ATOMIC_RELEASE);
    __atomic_store_n(&swm_calloc_entry, calloc_entry, __ATOMIC_RELEASE);
    __atomic_store_n(&swm_realloc_entry, realloc_entry, __ATOMIC_RELEASE);
#else
    (void)malloc_entry, (void)calloc_entry, (void)realloc_entry;
#endif
}

extern void swm_free_tracked(void *);
void swm_use_tracked_free(void) {
#ifndef SWIFTMALLOC_PREFIXED_ONLY
    __atomic_store_n(&swm_free_entry, (void *)swm_free_tracked, __ATOMIC_RELEASE);
#endif
}

extern void swm_free_flat(void *);
void swm_use_flat_free(void) {
#ifndef SWIFTMALLOC_PREFIXED_ONLY
    __atomic_store_n(&swm_free_entry, (void *)swm_free_flat, __ATOMIC_RELEASE);
#endif
}

void swm_use_general_free(void) {
#ifndef SWIFTMALLOC_PREFIXED_ONLY
    void *flat = (void *)swm_free_flat;
    __atomic_compare_exchange_n(&swm_free_entry, &flat, (void *)swiftmalloc_free, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
#endif
}

extern void *swm_malloc_sampled(size_t);
void swm_use_sampled_malloc(void) {
    swm_select_entries((void *)swm_malloc_sampled, (void *)swiftmalloc_calloc, (void *)swiftmalloc_realloc);
}
