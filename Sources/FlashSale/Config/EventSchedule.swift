import Foundation

/// A recurring sale window: some weekdays, at a wall-clock time in the config's time zone.
///
/// Expanded into concrete events when the config loads. Each day's start is built from its
/// local date and time by `Calendar`, never by adding 24 h to the day before, so a change to or
/// from daylight saving time moves the UTC start and leaves the local start where it was.
struct EventSchedule: Sendable, Equatable {
    /// One day of the schedule.
    struct Occurrence: Sendable, Equatable {
        /// The local date, `YYYYMMDD`: the suffix of the event id.
        var dateStamp: String
        /// Start, unix epoch milliseconds.
        var startsAtMs: Int64
        /// End, unix epoch milliseconds.
        var endsAtMs: Int64
    }

    /// The days, as `Calendar` weekday numbers: 1 is Sunday, 7 is Saturday.
    var weekdays: Set<Int>
    /// Local start hour, 0...23.
    var hour: Int
    /// Local start minute, 0...59.
    var minute: Int
    /// Length of each window, in milliseconds.
    var durationMs: Int64
    /// How far past the load time days are expanded, in milliseconds.
    var horizonMs: Int64

    /// How long an ended event is kept: `GET /v1/events` lists events ended in the last 24 h (§3.3).
    static let endedKeptMs: Int64 = 86_400_000

    /// The weekday names of the config, lowercased, by `Calendar` weekday number.
    static let weekdayNumbers: [String: Int] = [
        "sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7,
        "sunday": 1, "monday": 2, "tuesday": 3, "wednesday": 4, "thursday": 5, "friday": 6, "saturday": 7,
    ]

    /// The days whose window ends after `nowMs - endedKeptMs` and starts before `nowMs + horizonMs`,
    /// in time order.
    ///
    /// A local start time that does not exist on a day (skipped by a daylight-saving change) is
    /// moved forward by `Calendar` the way the clocks were; an ambiguous one takes its first instant.
    func occurrences(in timeZone: TimeZone, nowMs: Int64) -> [Occurrence] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let earliestEndMs = nowMs - Self.endedKeptMs
        let latestStartMs = nowMs + horizonMs
        // A window ending after earliestEndMs starts at most durationMs before it; one more day
        // of margin covers any UTC offset.
        let firstDay = calendar.dateComponents(
            [.year, .month, .day], from: Self.date(ms: earliestEndMs - durationMs - 86_400_000))
        guard
            let firstNoon = calendar.date(
                from: DateComponents(year: firstDay.year, month: firstDay.month, day: firstDay.day, hour: 12))
        else { return [] }
        var result: [Occurrence] = []
        // Bounded: the horizon and the duration are each limited, so this is about a hundred days.
        for dayOffset in 0..<1000 {
            // Noon is on the right date whatever a daylight-saving change does at night.
            guard let noon = calendar.date(byAdding: .day, value: dayOffset, to: firstNoon) else { break }
            let day = calendar.dateComponents([.year, .month, .day, .weekday], from: noon)
            guard let year = day.year, let month = day.month, let dayOfMonth = day.day, let weekday = day.weekday,
                let start = calendar.date(
                    from: DateComponents(year: year, month: month, day: dayOfMonth, hour: hour, minute: minute))
            else { break }
            let startsAtMs = Self.milliseconds(start)
            if startsAtMs >= latestStartMs { break }
            let endsAtMs = startsAtMs + durationMs
            guard weekdays.contains(weekday), endsAtMs > earliestEndMs else { continue }
            result.append(
                Occurrence(
                    dateStamp: Self.dateStamp(year: year, month: month, day: dayOfMonth),
                    startsAtMs: startsAtMs, endsAtMs: endsAtMs))
        }
        return result
    }

    /// `YYYYMMDD`.
    static func dateStamp(year: Int, month: Int, day: Int) -> String {
        func pad(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return pad(year, 4) + pad(month, 2) + pad(day, 2)
    }

    private static func date(ms: Int64) -> Date {
        Date(timeIntervalSince1970: Double(ms) / 1000)
    }

    private static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }
}
