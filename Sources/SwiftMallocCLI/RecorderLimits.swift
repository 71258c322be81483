// Limits of the library's recorder that the tool checks and explains.

enum RecorderLimits {
    /// The most frames the library records per stack (SWM_WALK_MEMO_DEPTH in
    /// the library); SWIFTMALLOC_PROFILE_DEPTH above it is cut to it.
    static let maxDepth = 64
    /// The library's depth when SWIFTMALLOC_PROFILE_DEPTH is not set.
    static let defaultDepth = 32
}
