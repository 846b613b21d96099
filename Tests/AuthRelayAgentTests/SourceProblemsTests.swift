import Glibc  // EMFILE, EBADF
import Testing

@testable import AuthRelayAgent

@Suite("SourceProblems")
struct SourceProblemsTests {
    @Test("counts each kind and keeps the last errno")
    func counts() {
        let problems = SourceProblems()
        problems.readFailed.note(errno: EBADF)
        problems.readFailed.note(errno: EMFILE)
        problems.queueOverflow.note()
        #expect(problems.readFailed.total == 2)
        #expect(problems.readFailed.errno == EMFILE)
        #expect(problems.queueOverflow.total == 1)
        #expect(problems.queueOverflow.errno == 0)
        #expect(problems.answerFailed.total == 0)
        #expect(problems.all.map(\.total) == [2, 0, 1, 0, 0])
    }

    @Test("says the count and the last error's text")
    func description() {
        let problems = SourceProblems()
        for _ in 0..<3 { problems.readFailed.note(errno: EMFILE) }
        #expect(problems.readFailed.description == "events that could not be read: 3 (last: Too many open files)")
        problems.queueOverflow.note()
        #expect(problems.queueOverflow.description == "kernel queue overflows: 1")
    }

    @Test("each kind is reported once, the first time it is asked after a failure")
    func reportedOnce() {
        let problems = SourceProblems()
        #expect(problems.takeNewReports().isEmpty)
        problems.answerFailed.note(errno: EBADF)
        #expect(problems.takeNewReports().map(\.name) == ["verdicts that could not be written"])
        problems.answerFailed.note(errno: EBADF)
        #expect(problems.takeNewReports().isEmpty, "already reported")
        problems.missingDescriptor.note()
        problems.sourceStopped.note()
        #expect(problems.takeNewReports().map(\.name) == ["events without a file descriptor", "source stopped on an error"])
        #expect(problems.answerFailed.total == 2, "reporting does not reset the count")
    }
}
