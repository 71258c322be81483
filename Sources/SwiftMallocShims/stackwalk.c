// A cached stack walker for full profiling. libunwind finds each caller by looking
// up the DWARF call-frame information of every return address, every time: about
// 80 instructions per frame. But at a given return address the caller's frame has
// one shape, so its rule can be learned once — from libunwind itself, never from a
// parser of ours — and replayed with two loads per frame:
//
//   SP rule:  CFA = sp + K (K constant at that return address), next ip = *(CFA - 8)
//   FP rule:  CFA = rbp + 16, next ip = *(rbp + 8), caller's rbp = *rbp
//             (a frame-pointer frame; right even when it uses alloca)
//   last:     the outermost frame (libunwind's walk ended there)
//
// A rule is one word: K (a positive multiple of 8) plus its kind in the low bits;
// each thread's walk memo also keeps the step of each depth's rule (K for an SP
// rule, 2^62 for any other), so the common frame's CFA is one add and one
// comparison with the stack top (stackwalk.h). A frame that does not
// leave rbp as its caller had it (optimized code using rbp as a register) carries a
// flag in the rule's upper half and where it saved its caller's rbp (libunwind's
// save location of that register), which only an FP frame further out looks at:
// it replays the frames since the last FP frame to know rbp. Without the save
// location such a stack has no cached walk, and every capture of it walks with
// libunwind (1 M allocations under a frame-pointer function took 5.4 s instead of
// 0.03 s; any C program under a glibc whose start-up frame keeps a frame pointer).
//
// A walk that meets a return address with no rule, or whose next frame would lie
// outside the part of this thread's stack that libunwind has walked, gives up; the
// caller then walks with libunwind and learns the rules of that stack. Every read
// is bounded by [sp, top of the walked stack], so a wrong rule (code unloaded and
// replaced at the same address) can give a wrong stack but never a fault.
//
// Rules live in a fixed open-addressing table mapped on first use (256 KiB),
// written under a lock, read without one: an entry's rule is stored before its
// return address is published (release), and a reader loads the address first
// (acquire). Nothing here allocates.
#define _GNU_SOURCE 1
#include "SwiftMallocShims.h"
#include "stackwalk.h"
#include <dlfcn.h>

swm_frame_rule *swm_rules;
static int32_t swm_rules_lock;
static unsigned swm_rules_used;
uintptr_t swm_rules_generation;
__thread uintptr_t swm_tls_stack_top __attribute__((tls_model("initial-exec")));

/// In a forked child: another thread may have held the rule lock at fork(). Rules
/// are published whole (address last), so the table itself is consistent.
void swm_stackwalk_fork_child(void) { swm_lock_reset(&swm_rules_lock); }

/// Empties the rule table (its entries' addresses first, so a reader that matched one
/// finds at worst no rule, and walks with libunwind) and bumps the generation, which
/// makes every thread's walk memo forget itself before its next walk. Walks in
/// flight meanwhile are of stacks without the unloaded code.
void swm_stackwalk_forget_code(void) {
    swm_frame_rule *t = __atomic_load_n(&swm_rules, __ATOMIC_ACQUIRE);
    if (t == NULL) return;
    swm_lock(&swm_rules_lock);
    for (unsigned i = 0; i < RULE_SLOTS; i++) __atomic_store_n(&t[i].ip, 0, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (unsigned i = 0; i < RULE_SLOTS; i++) t[i].rule = 0;
    swm_rules_used = 0;
    __atomic_fetch_add(&swm_rules_generation, 1, __ATOMIC_RELEASE);
    swm_unlock(&swm_rules_lock);
}

void swm_walk_memo_forget(uintptr_t *memo, int n) {
    for (int i = 0; i < n && i < SWM_WALK_MEMO_DEPTH; i++) {
        memo[SWM_WALK_MEMO_RULES + i] = 0;
        memo[SWM_WALK_MEMO_STEPS + i] = SWM_STEP_NONE;
    }
}

#if defined(__x86_64__) && __has_include(<libunwind.h>)
#define UNW_LOCAL_ONLY
#include <libunwind.h>

typedef int (*swm_getcontext_fn)(unw_context_t *);
typedef int (*swm_init_local_fn)(unw_cursor_t *, unw_context_t *);
typedef int (*swm_step_fn)(unw_cursor_t *);
typedef int (*swm_get_reg_fn)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
typedef int (*swm_get_save_loc_fn)(unw_cursor_t *, int, unw_save_loc_t *);
static swm_get_save_loc_fn swm_unw_get_save_loc;
static swm_getcontext_fn swm_unw_getcontext;
static swm_init_local_fn swm_unw_init_local;
static swm_step_fn swm_unw_step;
static swm_get_reg_fn swm_unw_get_reg;

void swm_stackwalk_open(void *libunwind) {
    if (libunwind == NULL) return;
    swm_unw_getcontext = (swm_getcontext_fn)dlsym(libunwind, "_Ux86_64_getcontext");
    swm_unw_init_local = (swm_init_local_fn)dlsym(libunwind, "_ULx86_64_init_local");
    swm_unw_step = (swm_step_fn)dlsym(libunwind, "_ULx86_64_step");
    swm_unw_get_reg = (swm_get_reg_fn)dlsym(libunwind, "_ULx86_64_get_reg");
    swm_unw_get_save_loc = (swm_get_save_loc_fn)dlsym(libunwind, "_ULx86_64_get_save_loc");
}

/// The rule of frame a, from a and its caller b as libunwind unwound them (`save_b`:
/// where b's rbp was saved, 0 if not in memory); 0 when the frame does not fit
/// either rule (signal frames, odd code).
static uintptr_t swm_rule_of(uintptr_t sp_a, uintptr_t bp_a, uintptr_t ip_b, uintptr_t sp_b, uintptr_t bp_b,
                             uintptr_t save_b) {
    uintptr_t k = sp_b - sp_a;
    if (sp_b <= sp_a || k > (1u << 20) || (k & 7)) return 0;
    // A frame without unwind information (a JIT compiler's code, V8's builtins)
    // that libunwind stepped over by its frame pointer: b's return address and rbp
    // are the two words at a's rbp, but the stack pointer libunwind gives b is a
    // guess that need not be its CFA (sp_a + 16, say), so the test below fails.
    // That is an FP frame; without this, every stack through one was walked by
    // libunwind again (Node.js: over a hundred times slower under full profiling).
    if (bp_a >= sp_a && bp_a - sp_a <= (1u << 20) && !(bp_a & 7) && bp_a + 16 <= swm_stack_top_for(sp_a) &&
        ((const uintptr_t *)bp_a)[1] == ip_b && ((const uintptr_t *)bp_a)[0] == bp_b)
        return RULE_FP;
    if (((const uintptr_t *)sp_b)[-1] != ip_b) return 0;
    if (bp_a == sp_b - 16 && ((const uintptr_t *)bp_a)[0] == bp_b) return RULE_FP;
    if (bp_a == bp_b) return k | RULE_SP;
    uintptr_t rule = k | RULE_SP | RULE_CLOBBERS;
    // a changed rbp, so it saved b's in its own frame: [sp_a, sp_b).
    if (save_b >= sp_a && save_b < sp_b && (save_b & 7) == 0 && ((const uintptr_t *)save_b)[0] == bp_b)
        rule |= ((sp_b - save_b) >> 3) << RULE_SAVE_SHIFT;
    return rule;
}

static void swm_rule_add(uintptr_t ip, uintptr_t rule) {
    if (rule == 0 || ip == 0) return;
    swm_frame_rule *t = swm_rules;
    unsigned i = swm_rule_slot(ip);
    while (t[i].ip != 0) {
        if (t[i].ip == ip) return;
        i = (i + 1) & (RULE_SLOTS - 1);
    }
    if (swm_rules_used >= RULE_MAX_USED) return;
    t[i].rule = rule;
    __atomic_store_n(&t[i].ip, ip, __ATOMIC_RELEASE);
    swm_rules_used++;
}

static int swm_map_rules(void) {
    if (__atomic_load_n(&swm_rules, __ATOMIC_ACQUIRE) != NULL) return 1;
    swm_lock(&swm_rules_lock);
    if (swm_rules == NULL) {
        void *m = mmap(NULL, sizeof(swm_frame_rule) * RULE_SLOTS, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED) __atomic_store_n(&swm_rules, (swm_frame_rule *)m, __ATOMIC_RELEASE);
    }
    swm_unlock(&swm_rules_lock);
    return swm_rules != NULL;
}

/// Walks the calling thread's stack with libunwind's cursor API, returns up to
/// `max` return addresses from the first frame outside this library, and learns the
/// rules of the frames walked (at most 128). -1 when the cursor API is missing.
/// The rules are added after the walk: libunwind may take the loader's lock, which
/// a thread allocating inside dlopen holds, so no lock of ours is held during it.
static int swm_walk_learn_now(uintptr_t *frames, int max);

/// errno is left as it was (libunwind's checks of the addresses it reads may set
/// it), and no cancellation acts inside (see swm_cancel_off).
int swm_walk_learn(uintptr_t *frames, int max) {
    int saved = errno;
    int cancel = swm_cancel_off();
    int n = swm_walk_learn_now(frames, max);
    swm_cancel_restore(cancel);
    errno = saved;
    return n;
}

static int swm_walk_learn_now(uintptr_t *frames, int max) {
    if (swm_unw_step == NULL || swm_unw_getcontext == NULL || swm_unw_init_local == NULL || swm_unw_get_reg == NULL)
        return -1;
    if (!swm_map_rules()) return -1;
    if (!swm_unwind_enter()) return -1;
    unw_context_t context;
    unw_cursor_t cursor;
    if (swm_unw_getcontext(&context) != 0 || swm_unw_init_local(&cursor, &context) != 0) {
        swm_unwind_leave();
        return -1;
    }
    enum { walk_limit = 128 };
    swm_frame_rule learned[walk_limit];
    int n = 0, count = 0, ended = 0, walked = 0, have_prev = 0;
    uintptr_t prev_ip = 0, prev_sp = 0, prev_bp = 0;
    while (walked < walk_limit + 8) {
        unw_word_t ip = 0, sp = 0, bp = 0;
        swm_unw_get_reg(&cursor, UNW_REG_IP, &ip);
        swm_unw_get_reg(&cursor, UNW_REG_SP, &sp);
        swm_unw_get_reg(&cursor, UNW_X86_64_RBP, &bp);
        walked++;
        // A return address of 0 ends the stack, as it ends unw_backtrace's: libunwind
        // guessed this frame from rbp (code without unwind tables), and the frame
        // before it is learned as the last, so cached walks stop where libunwind's do.
        if (have_prev && ip == 0) {
            ended = 1;
            break;
        }
        if (have_prev || !swm_is_self_frame(ip)) {
            if (have_prev) {
                uintptr_t save = 0;
                unw_save_loc_t loc;
                if (swm_unw_get_save_loc != NULL && bp != prev_bp &&
                    swm_unw_get_save_loc(&cursor, UNW_X86_64_RBP, &loc) == 0 && loc.type == UNW_SLT_MEMORY)
                    save = (uintptr_t)loc.u.addr;
                learned[count].ip = prev_ip;
                learned[count].rule = swm_rule_of(prev_sp, prev_bp, ip, sp, bp, save);
                count++;
            }
            if (n < max) frames[n++] = ip;
            have_prev = 1;
            prev_ip = ip, prev_sp = sp, prev_bp = bp;
            if (count == walk_limit - 1) break;
        }
        int s = swm_unw_step(&cursor);
        if (s <= 0) { ended = s == 0; break; }
    }
    swm_unwind_leave();
    if (ended && have_prev) {
        learned[count].ip = prev_ip;
        learned[count].rule = RULE_LAST;
        count++;
        if (prev_sp > swm_tls_stack_top) swm_tls_stack_top = prev_sp;
    }
    swm_lock(&swm_rules_lock);
    for (int i = 0; i < count; i++) swm_rule_add(learned[i].ip, learned[i].rule);
    swm_unlock(&swm_rules_lock);
    return n;
}
#else
#if defined(__x86_64__)
#warning "libunwind.h not found (Debian: libunwind-dev): built without the cached stack walk; full profiling walks every stack with libunwind, several times slower"
#endif
void swm_stackwalk_open(void *libunwind) { (void)libunwind; }
int swm_walk_learn(uintptr_t *frames, int max) { (void)frames; (void)max; return -1; }
#endif
