import Testing

/// Every AuthRelay test runs in this one serialized suite: the leak test reads
/// the process's resident size, which tests allocating beside it would blur.
@Suite(.serialized) struct AuthRelayTests {}
