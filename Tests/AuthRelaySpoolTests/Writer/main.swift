import AuthRelaySpool
import Glibc
import SystemSupport

// authrelay-spool-writer DIRECTORY BOOT_ID EVENTS_PER_RECORD
//
// What the spool's kill -9 test runs: appends records of 150-byte events
// (bytes from `eventByte`, so the test can check them) until it is killed,
// and says "appended N" on stderr each time an append has returned.
let arguments = CommandLine.arguments
guard arguments.count == 4, let perRecord = UInt32(arguments[3]), perRecord > 0 else {
    Processes.writeToStandardError("usage: authrelay-spool-writer DIRECTORY BOOT_ID EVENTS_PER_RECORD\n")
    exit(2)
}

/// Byte `index` of event `sequence`: the test computes the same.
func eventByte(_ sequence: UInt64, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: sequence &* 31 &+ UInt64(index)) }

do {
    let spool = try Spool.open(SpoolConfiguration(directory: arguments[1], agentID: "writer", bootID: arguments[2],
                                                  maxBytes: 1 << 30, segmentBytes: 1 << 20, durability: .none))
    var sequence: UInt64 = 1
    var payload: [UInt8] = []
    while true {
        payload.removeAll(keepingCapacity: true)
        for event in sequence..<(sequence + UInt64(perRecord)) {
            for index in 0..<150 { payload.append(eventByte(event, index)) }
        }
        try spool.append(events: payload, firstSequence: sequence, count: perRecord)
        sequence += UInt64(perRecord)
        Processes.writeToStandardError("appended \(sequence - 1)\n")
    }
} catch {
    Processes.writeToStandardError("authrelay-spool-writer: \(error)\n")
    exit(1)
}
