import Glibc

/// strerror's text alone ("Too many open files"), for counters that keep only
/// the last errno and say it in a summary.
package func errnoReason(_ code: Int32) -> String {
    String(cString: strerror(code))
}
