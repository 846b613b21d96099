import Testing

/// The suites nested in this one (extensions of AuthRelayTests) run one at a time.
/// That orders only them: the other suites of this target (AuthPipeline, BoundedQueue,
/// Policy) and every suite of ONCRPCTests and IntegrationTests run in parallel with
/// them in the same process. So no test here may rely on having the process to itself
/// (the leak test measures in a child process of its own for that reason).
@Suite(.serialized) struct AuthRelayTests {}
