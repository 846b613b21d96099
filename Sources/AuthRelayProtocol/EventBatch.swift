/// What a batch is sent with: who sent it and what it lost before it.
public struct BatchHeader: Sendable, Equatable {
    public var agentID: String
    public var bootID: String
    public var firstSequence: UInt64
    /// Version 2: events the agent dropped since its previous batch.
    public var dropped: UInt64
    /// Version 3: sequences this batch accounts for that will never be sent, and why
    /// (ascending, disjoint, between the events).
    public var losses: [LossRange]
    /// Version 3: the agent's sender and spool as they are now.
    public var status: AgentStatus

    public init(agentID: String, bootID: String, firstSequence: UInt64, dropped: UInt64 = 0,
                losses: [LossRange] = [], status: AgentStatus = AgentStatus()) {
        self.agentID = agentID
        self.bootID = bootID
        self.firstSequence = firstSequence
        self.dropped = dropped
        self.losses = losses
        self.status = status
    }
}

public struct EventBatch: Sendable, Equatable {
    public var header: BatchHeader
    public var events: [Event]

    public init(header: BatchHeader, events: [Event]) {
        self.header = header
        self.events = events
    }

    /// Checks the header's ids, the event count and every event against the `.x` bounds.
    /// A batch with no events is valid: it reports drops only.
    public func validate() throws(EventError) {
        try validate(eventFields: true)
    }

    /// `eventFields` false: the events' own fields are known to be within bounds
    /// (the sender sanitized each as it took it), so only the header, the count
    /// and the numbering are checked.
    package func validate(eventFields: Bool) throws(EventError) {
        try Event.checkString(header.agentID, field: "agent_id", limit: Event.maxIDBytes)
        try Event.checkString(header.bootID, field: "boot_id", limit: Event.maxIDBytes)
        guard events.count <= Event.maxBatchEvents else {
            throw .tooManyEvents(count: events.count, limit: Event.maxBatchEvents)
        }
        for (offset, event) in events.enumerated() {
            let expected = header.firstSequence &+ UInt64(offset)
            guard event.sequence == expected else { throw .sequenceMismatch(expected: expected, found: event.sequence) }
            if eventFields { try event.validate() }
        }
    }
}

