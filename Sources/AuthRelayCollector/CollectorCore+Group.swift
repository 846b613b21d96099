import AuthRelayProtocol

/// Groups: the writer thread (CollectorWriter.swift) runs several reports
/// through the core, then stores the sink's staged lines at once. Until the
/// sink says they are stored, none is acknowledged; when it fails, every
/// change the group made (highest sequences, drop reports, counters) is put
/// back, so a retry is judged exactly as the first attempt was.
extension CollectorCore {
    /// What a group changes besides the sequences (which journal themselves).
    struct GroupStart {
        var statistics: CollectorStats
        var statisticsV3: CollectorStatsV3
        var checkpointNeeded: Bool
        var eventsSinceCheckpoint: UInt64
        var stateLostNoted: Bool
    }

    package func beginGroup() {
        groupStart = GroupStart(statistics: statistics, statisticsV3: statisticsV3, checkpointNeeded: checkpointNeeded,
                                eventsSinceCheckpoint: eventsSinceCheckpoint, stateLostNoted: stateLostNoted)
        sequences.beginGroup()
        sink.beginGroup()
    }

    /// The sink's answer to `commitGroup` (made outside the core's lock: the
    /// poll loop reads the counters meanwhile). Failed: the group's changes are
    /// undone (`rollbackGroup`), and none of its reports may be acknowledged.
    package func finishGroup(_ outcome: Result<GroupCommit, SinkError>) {
        guard case .success(let commit) = outcome else { return rollbackGroup() }
        groupStart = nil
        sequences.commitGroup(outputRotated: commit.rotated)
        if commit.duplicateEvents > 0 {
            // Another collector stored them first: duplicates, not written by this one.
            let moved = min(commit.duplicateEvents, statistics.written)
            statistics.written -= moved
            statistics.duplicates.addSaturating(moved)
        }
    }

    /// The group was not stored: everything is as before it, plus one sink error per report.
    func rollbackGroup() {
        guard let start = groupStart else { return }
        groupStart = nil
        sequences.rollbackGroup()
        statistics = start.statistics
        statisticsV3 = start.statisticsV3
        checkpointNeeded = start.checkpointNeeded
        eventsSinceCheckpoint = start.eventsSinceCheckpoint
        stateLostNoted = start.stateLostNoted
        if (sink as? JSONLinesSink)?.groupRotated == true {
            // The rotation stayed though the write failed: no pair's lines are in the new file.
            sequences.outputRotated()
            checkpointNeeded = true
        }
    }

    /// Failed reports of a group that was not stored: counted once each.
    package func countUnstored(_ reports: Int) {
        statistics.sinkErrors.addSaturating(UInt64(reports))
    }
}
