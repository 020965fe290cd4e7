import FlashSale
import NIOCore

/// What a connection has to offer a command: the engine, the watch hub, the ops secret, and
/// the channel (for `WATCH` lines).
struct OpsContext: Sendable {
    let engine: SaleEngine
    let watchHub: StockWatchHub
    /// The ops password; nil: the engine's credentials (replaced by a reload).
    let opsSecret: String?
    let channel: any Channel
}

/// What a command changes about its connection, besides its reply.
enum OpsEffect: Sendable {
    case none
    /// `AUTH` succeeded: write commands are allowed from now on.
    case authenticated
    /// `AUTH` failed (counted toward `OpsLimits.opsAuthFailuresMax`).
    case authFailed
    /// Close after the reply (`QUIT`).
    case close
    /// Start this watch after the reply (replacing any earlier one).
    case watch(WatchSubscription)
}

/// A command's reply and effect.
struct OpsOutcome: Sendable {
    var reply: OpsReply
    var effect: OpsEffect = .none
}

/// One row of the command table: checked before its handler ever runs.
struct OpsCommand: Sendable {
    /// The command word, upper case.
    let name: String
    /// How many arguments it takes.
    let arity: ClosedRange<Int>
    /// Whether it changes state (only after `AUTH`).
    let needsAuth: Bool
    /// Whether it reads or changes the engine's state, so runs only through the engine's gate
    /// (`ERR unavailable` while recovering or rebuilding after a failed commit).
    var usesEngine = true
    /// The handler, given the arguments (arity already checked).
    let run: @Sendable (OpsContext, [String]) async -> OpsOutcome
}

/// What the table decided about a line, before any handler runs.
enum OpsDispatch {
    /// Answer this without running anything.
    case reply(OpsReply)
    /// Run `command` with `arguments`.
    case run(OpsCommand, [String])
}

/// Name, arity and auth: the checks every line passes, in that order, before a handler runs.
struct OpsCommandTable: Sendable {
    private let commands: [String: OpsCommand]

    /// A table of `commands`.
    init(_ commands: [OpsCommand]) {
        var table: [String: OpsCommand] = [:]
        for command in commands {
            precondition(table[command.name] == nil, "ops command \(command.name) listed twice")
            table[command.name] = command
        }
        self.commands = table
    }

    /// Splits `line` on spaces and checks it: an empty line gets no answer.
    func dispatch(_ line: String, authenticated: Bool) -> OpsDispatch {
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = words.first else { return .reply(.none) }
        guard let command = commands[first.uppercased()] else {
            return .reply(.error(code: "unknown_command", text: "unknown command '\(first.prefix(32))'"))
        }
        if command.needsAuth && !authenticated {
            return .reply(.error(code: "auth_required", text: "\(command.name) needs AUTH first"))
        }
        let arguments = words.dropFirst().map(String.init)
        guard command.arity.contains(arguments.count) else {
            let expected = command.arity.count == 1 ? "\(command.arity.lowerBound)" : "\(command.arity.lowerBound)..\(command.arity.upperBound)"
            return .reply(.error(code: "bad_arguments", text: "\(command.name) takes \(expected) arguments, got \(arguments.count)"))
        }
        return .run(command, arguments)
    }
}

/// The command table and its handlers without a connection, for the fuzz target: a line is
/// checked and run exactly as `OpsConnectionHandler` runs it. A `WATCH` is registered by its
/// handler and removed again at once (nothing is pushed).
@_spi(Fuzzing)
public struct OpsCommandRunner: Sendable {
    private let context: OpsContext

    /// A runner over `engine`; `channel` stands for the connection (`WATCH` names it).
    public init(engine: SaleEngine, watchHub: StockWatchHub, opsSecret: String, channel: any Channel) {
        context = OpsContext(engine: engine, watchHub: watchHub, opsSecret: opsSecret, channel: channel)
    }

    /// The reply's wire form, and whether the line authenticated the connection.
    public func answer(_ line: String, authenticated: Bool) async -> (reply: String, authenticates: Bool) {
        switch OpsCommands.table.dispatch(line, authenticated: authenticated) {
        case .reply(let reply):
            return (reply.text, false)
        case .run(let command, let arguments):
            let outcome = await command.run(context, arguments)
            switch outcome.effect {
            case .watch(let subscription): context.watchHub.remove(subscription)
            case .authenticated: return (outcome.reply.text, true)
            case .none, .authFailed, .close: break
            }
            return (outcome.reply.text, false)
        }
    }
}
