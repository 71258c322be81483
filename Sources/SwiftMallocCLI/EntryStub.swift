// Code that a stack reaches through a return address no call instruction
// pushed: the address is the stub's first byte, so the symbolizer looks it up
// as it is, where for any other return address it looks up the byte before
// (inside the call), which here would name whatever function precedes the stub.
// Recognized by their code, as debuggers recognize a signal frame.

enum EntryStub: Equatable {
    /// The kernel's signal return trampoline (glibc's `__restore_rt` on x86-64:
    /// `mov $15, %rax; syscall`): a signal handler "returns" to it, and the frame
    /// above it is the one the signal interrupted.
    case signalReturn
    /// glibc's `__start_context` on x86-64 (`mov %rbx, %rsp; mov (%rsp), %rdi`,
    /// after an `endbr64` where glibc is built for CET): makecontext stores its
    /// address as the return address of a coroutine's function, so it is the
    /// outermost frame of every coroutine stack.
    case contextStart

    private static let signalReturnCode: [UInt8] = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]
    private static let contextStartCode: [UInt8] = [0x48, 0x89, 0xdc, 0x48, 0x8b, 0x3c, 0x24]
    private static let endbr64: [UInt8] = [0xf3, 0x0f, 0x1e, 0xfa]

    /// Bytes `starting` needs to see.
    static let longestCode = endbr64.count + max(signalReturnCode.count, contextStartCode.count)

    /// The stub whose code `bytes` (read at an address) begin with, if any.
    static func starting(_ bytes: [UInt8]) -> EntryStub? {
        if bytes.starts(with: signalReturnCode) { return .signalReturn }
        if bytes.starts(with: contextStartCode) || bytes.starts(with: endbr64 + contextStartCode) { return .contextStart }
        return nil
    }
}
